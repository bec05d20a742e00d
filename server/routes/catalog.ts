// GET /v2/_catalog : repository names in lexical order, paginated with n/last.
import { listRepositories } from '../registry/repositories.js';
import { paginate, sendJson, type Handler } from './context.js';

export const getCatalog: Handler = async (ctx, req, res) => {
  const all = (await listRepositories(ctx.registry.storage)).filter((name) => ctx.principal.seesInCatalog(name));
  sendJson(res, 200, { repositories: paginate(req, res, all, '/v2/_catalog') });
};
