// Repository names and tags, as the distribution-spec grammar defines them.
// Validating before anything touches a storage key is what keeps `..`, `//` and
// percent-encoded tricks out of paths: none of them can match these patterns.

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
export const NAME_PATTERN = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
export const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** Same cap as distribution: longer names are refused even when they match the grammar. */
export const NAME_MAX_LENGTH = 255;

export function isValidName(name: string): boolean {
  return typeof name === 'string' && name.length <= NAME_MAX_LENGTH && NAME_PATTERN.test(name);
}

export function isValidTag(tag: string): boolean {
  return typeof tag === 'string' && TAG_PATTERN.test(tag);
}
