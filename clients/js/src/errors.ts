/** The errors the client throws for the server's refusals. */

/** A non-2xx answer: its status and the first entry of the server's `errors` body. */
export class KvError extends Error {
  override name = "KvError";
  /** The HTTP status. */
  readonly status: number;
  /** The service's error code, e.g. "75007" (empty when the body carried none). */
  readonly code: string;
  /** The server's one-sentence explanation. */
  readonly detail: string;
  readonly title: string;
  /** `{pointer}` (a JSON field of the request) or `{parameter}` (a path/query/header one). */
  readonly source: { pointer?: string; parameter?: string } | undefined;
  readonly requestId: string | undefined;

  constructor(
    status: number,
    fields: {
      code?: string;
      title?: string;
      detail?: string;
      source?: { pointer?: string; parameter?: string };
      requestId?: string;
    },
    message?: string,
  ) {
    const detail = fields.detail ?? "";
    super(message ?? `KV request failed with status ${status}${detail ? `: ${detail}` : ""}`);
    this.status = status;
    this.code = fields.code ?? "";
    this.title = fields.title ?? "";
    this.detail = detail;
    this.source = fields.source;
    this.requestId = fields.requestId;
  }
}

/** A transaction whose reads kept being changed by others until its attempts ran out. */
export class KvConflictError extends KvError {
  override name = "KvConflictError";
  readonly attempts: number;

  constructor(attempts: number, cause: KvError) {
    super(
      cause.status,
      {
        code: cause.code,
        title: cause.title,
        detail: cause.detail,
        source: cause.source,
        requestId: cause.requestId,
      },
      `Transaction conflict: keys it read were changed by other writes on each of ${attempts} ` +
        "attempts; nothing was written.",
    );
    this.attempts = attempts;
    this.cause = cause;
  }
}

/** The KvError of an answer that is not 2xx (its body read, JSON or not). */
export async function errorOf(response: Response): Promise<KvError> {
  const text = await response.text().catch(() => "");
  let first: Record<string, unknown> | undefined;
  try {
    const body = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(body.errors) && body.errors[0] && typeof body.errors[0] === "object") {
      first = body.errors[0] as Record<string, unknown>;
    }
  } catch {
    // not JSON: the text itself is the detail
  }
  if (first === undefined) {
    return new KvError(response.status, { detail: text.slice(0, 500) });
  }
  const meta = first.meta as { request_id?: string } | undefined;
  return new KvError(response.status, {
    code: typeof first.code === "string" ? first.code : undefined,
    title: typeof first.title === "string" ? first.title : undefined,
    detail: typeof first.detail === "string" ? first.detail : undefined,
    source: (first.source as KvError["source"]) ?? undefined,
    requestId: meta?.request_id ?? response.headers.get("X-Request-Id") ?? undefined,
  });
}
