// GET /v2/<name>/tags/list : tags in lexical order, paginated with n/last.
import { RegistryError } from '../errors.js';
import { repositoryExists } from '../registry/repositories.js';
import { paginate, repoName, sendJson, type Handler } from './context.js';

export const listTags: Handler = async (ctx, req, res) => {
  const name = repoName(ctx.params[0]!);
  const all = await ctx.registry.tags.list(name);
  if (all.length === 0 && !(await repositoryExists(ctx.registry.storage, name))) {
    throw new RegistryError('NAME_UNKNOWN', { name });
  }
  sendJson(res, 200, { name, tags: paginate(req, res, all, `/v2/${name}/tags/list`) });
};
