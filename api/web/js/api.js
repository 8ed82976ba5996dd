// The API of this origin, called with the session's credential.

export class ApiError extends Error {
  // `body` is the API's documented error body {"error": {code, message, path?, ...}},
  // or null when the answer was not one (a proxy's page, a dropped connection).
  constructor(status, body, headers) {
    const detail = body && body.error ? body.error : null;
    super(detail ? detail.message : `The API answered HTTP ${status}.`);
    this.status = status;
    this.code = detail ? detail.code : null;
    this.path = detail && detail.path !== undefined ? detail.path : null;
    this.detail = detail || {};
    this.retryAfter = headers ? Number(headers.get("Retry-After")) || null : null;
  }
}

export class NetworkError extends Error {
  constructor() {
    super("Could not reach the PhantomFlow API. Check the connection and try again.");
  }
}

function urlOf(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  return url;
}

export function createApi(session, { onUnauthorized } = {}) {
  async function send(method, path, { body, query, headers } = {}) {
    const init = {
      method,
      headers: { ...session.headers(), ...headers },
      cache: "no-store",
      credentials: "omit",
    };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(urlOf(path, query), init);
    } catch {
      throw new NetworkError();
    }
    if (!response.ok) {
      let data = null;
      try {
        data = await response.json();
      } catch {
        data = null;
      }
      const error = new ApiError(response.status, data, response.headers);
      if (response.status === 401 && onUnauthorized) onUnauthorized(error);
      throw error;
    }
    return response;
  }

  async function request(method, path, options) {
    const response = await send(method, path, options);
    return response.status === 204 ? null : response.json();
  }

  return {
    send,
    request,
    get: (path, options) => request("GET", path, options),
    post: (path, body, options) => request("POST", path, { ...options, body }),
    put: (path, body, options) => request("PUT", path, { ...options, body }),
    patch: (path, body, options) => request("PATCH", path, { ...options, body }),
    del: (path, options) => request("DELETE", path, options),
    // A file to save: fetched with the credential (a link could not carry it).
    async download(path, query, filename) {
      const response = await send("GET", path, { query });
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = filename;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    },
  };
}
