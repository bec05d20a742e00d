// GET /v2/ : the API version check every client starts with.
import type { Handler } from './context.js';
import { sendJson } from './context.js';

export const getBase: Handler = async (_ctx, _req, res) => {
  sendJson(res, 200, {});
};
