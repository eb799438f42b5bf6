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
