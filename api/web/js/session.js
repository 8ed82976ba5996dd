// Who is signed in, and how their requests are authenticated.
//
// The credential lives in this tab's sessionStorage only: never in localStorage, a
// cookie or a URL, so it goes when the tab closes and no other tab or site sees it.
//
// A credential is {scheme, secret, label}. Today there is one scheme, the API key the
// user pastes (sent as x-api-key). When the accounts routes arrive (e-mail and
// password giving a bearer token), add a scheme here, e.g.
//   bearer: (secret) => ({ Authorization: `Bearer ${secret}` }),
// and a sign-in method in pages/signin.js; nothing else changes.

const STORAGE_KEY = "phantomflow.credential";

export const SCHEMES = {
  api_key: (secret) => ({ "x-api-key": secret }),
};

export class Session {
  constructor(storage = window.sessionStorage) {
    this.storage = storage;
    this.credential = null;
    this.account = null; // GET /api/account, once signed in
    try {
      const stored = JSON.parse(storage.getItem(STORAGE_KEY) || "null");
      if (stored && SCHEMES[stored.scheme] && typeof stored.secret === "string") {
        this.credential = stored;
      }
    } catch {
      storage.removeItem(STORAGE_KEY);
    }
  }

  get signedIn() {
    return this.credential !== null;
  }

  headers() {
    if (!this.credential) return {};
    return SCHEMES[this.credential.scheme](this.credential.secret);
  }

  signIn(scheme, secret) {
    if (!SCHEMES[scheme]) throw new Error(`unknown sign-in scheme ${scheme}`);
    this.credential = { scheme, secret };
    this.storage.setItem(STORAGE_KEY, JSON.stringify(this.credential));
  }

  signOut() {
    this.credential = null;
    this.account = null;
    this.storage.removeItem(STORAGE_KEY);
  }
}
