// GET /v2/<name>/referrers/<digest> : an image index of the manifests whose subject is <digest>.
import { parseDigest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { queryString, repoName, sendJson, type Handler } from './context.js';

export const listReferrers: Handler = async (ctx, req, res) => {
  const name = repoName(ctx.params[0]!);
  const subject = parseDigest(ctx.params[1]!).digest;
  const artifactType = queryString(req, 'artifactType');
  const manifests = await ctx.registry.referrers.list(name, subject, artifactType);
  if (artifactType !== undefined) res.setHeader('OCI-Filters-Applied', 'artifactType');
  sendJson(res, 200, { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }, MediaType.OciIndex);
};
