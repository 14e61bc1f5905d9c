// The typed client of the sovamed JSON API (`/api/v1`).
//
// The request and answer types come from `schema.d.ts`, which openapi-typescript generates from
// the committed OpenAPI document (`docs/public/openapi.json`); the requests themselves go through
// openapi-fetch. Regenerate after an API change: `scripts/ts-client.sh generate` (`just ts-client`).
//
// It runs wherever `fetch` does: browsers, Next.js (server and client components), Node.js 20+.

import createClient, { type Client, type ClientOptions, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

/** Every named schema of the API: `Schemas["RecordOut"]`, `Schemas["ScheduleOut"]`, ... */
export type Schemas = components["schemas"];

/** The JSON of every error answer: `{"error": {"code", "message", "fields"?}}`. */
export type ApiError = Schemas["ErrorBody"];

/** The typed client: `client.GET("/api/v1/specialists")`, `client.POST("/api/v1/records", {...})`. */
export type SovamedClient = Client<paths>;

/** A bearer token, or where to get the current one (called before every request). */
export type TokenSource =
  | string
  | null
  | undefined
  | (() => string | null | undefined | Promise<string | null | undefined>);

export interface SovamedClientOptions extends Omit<ClientOptions, "baseUrl"> {
  /**
   * The access token from `POST /api/v1/user/login`. When it gives a non-empty string, every
   * request carries `Authorization: Bearer <token>` (unless the call sets `Authorization` itself).
   * A function is asked before each request, so a token kept in state (and refreshed) is
   * always the current one.
   */
  token?: TokenSource;
}

/**
 * A client of the sovamed API at `baseUrl`: the server's origin, e.g. `https://api.clinic.example`
 * (the paths of the API already start with `/api/v1`).
 */
export function createSovamedClient(baseUrl: string, options: SovamedClientOptions = {}): SovamedClient {
  const { token, ...rest } = options;
  const client = createClient<paths>({ ...rest, baseUrl: baseUrl.replace(/\/+$/, "") });
  if (token !== undefined && token !== null) {
    client.use(bearer(token));
  }
  return client;
}

/** The middleware that adds `Authorization: Bearer <token>`. */
function bearer(token: Exclude<TokenSource, null | undefined>): Middleware {
  return {
    async onRequest({ request }) {
      const current = typeof token === "function" ? await token() : token;
      if (current && !request.headers.has("Authorization")) {
        request.headers.set("Authorization", `Bearer ${current}`);
      }
      return request;
    },
  };
}

/**
 * The stable `error.code` of an error answer (`slot_taken`, `token_expired`, ...), or undefined
 * when the body is not the API's error JSON (a proxy's HTML page, the empty body of a 408).
 */
export function errorCode(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "error" in error) {
    const detail = (error as { error: unknown }).error;
    if (typeof detail === "object" && detail !== null && "code" in detail) {
      const code = (detail as { code: unknown }).code;
      return typeof code === "string" ? code : undefined;
    }
  }
  return undefined;
}

/** `Retry-After` of a 429 (or 503) answer in seconds, when the server sent one. */
export function retryAfterSeconds(response: Response): number | undefined {
  const value = response.headers.get("Retry-After");
  if (value === null || !/^\d+$/.test(value.trim())) {
    return undefined;
  }
  return Number(value.trim());
}

/**
 * A fresh `Idempotency-Key` for one booking attempt. Reuse the same key when retrying the same
 * request (a network error, a 409 `request_in_progress`); make a new one for another slot.
 */
export function newIdempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}
