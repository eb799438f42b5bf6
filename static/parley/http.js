// @ts-check
/**
 * JSON from Parley's own endpoints. A signed-out session answers with a redirect to the login
 * page, not JSON, so anything but a JSON 200 is an error the caller can fall back from.
 */

/** @param {string} url @returns {Promise<any>} */
export async function getJson(url) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
    redirect: "error",
  });
  const type = response.headers.get("Content-Type") ?? "";
  if (!response.ok || !type.includes("application/json")) {
    throw new Error(`${url} answered ${response.status}`);
  }
  return response.json();
}

/**
 * Django's CSRF token: every signed-in page carries one in its sign-out form, and the cookie
 * is readable too (CSRF_COOKIE_HTTPONLY is off), whichever is found first.
 */
function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (input instanceof HTMLInputElement && input.value) return input.value;
  return /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie)?.[1] ?? "";
}

/** An error from one of Parley's JSON endpoints, with its plain-words message. */
export class HttpError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * POST JSON to one of Parley's endpoints; resolves with the JSON answer.
 * @param {string} url
 * @param {unknown} body
 * @returns {Promise<any>}
 */
export async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body ?? {}),
    redirect: "error",
  });
  const type = response.headers.get("Content-Type") ?? "";
  const data = type.includes("application/json") ? await response.json() : null;
  if (!response.ok) throw new HttpError(response.status, data?.error ?? `${url} answered ${response.status}`);
  return data;
}
