// @ts-check
/**
 * A banner saying, in plain words, when the socket is not working and what to do about it.
 * Silent while all is well; "connecting" is shown only once a first connection has been lost.
 */

/** @typedef {import("./socket.js").ChatSocket} ChatSocket */
/** @typedef {import("./socket.js").SocketStatus} SocketStatus */

export class ConnectionNotice {
  /** @param {HTMLElement} banner  carries data-login-url @param {ChatSocket} socket */
  constructor(banner, socket) {
    this.banner = banner;
    this.everOnline = false;
    socket.onStatus((status) => this.show(status));
  }

  /** @param {SocketStatus} status */
  show(status) {
    const b = this.banner;
    b.dataset.status = status;
    if (status === "online") this.everOnline = true;
    b.hidden = status === "online" || (status === "connecting" && !this.everOnline);
    if (status === "offline" || status === "connecting") {
      b.textContent = "Connection lost. Reconnecting…";
    } else if (status === "signed-out") {
      this.withLink("You have been signed out.", "Sign in again", this.loginUrl());
    } else if (status === "too-many") {
      b.textContent = "Too many Parley tabs are open. Close one and this tab reconnects.";
    } else if (status === "outdated") {
      this.withLink("Parley has been updated.", "Reload the page", location.href);
    }
  }

  /** @param {string} text @param {string} label @param {string} href */
  withLink(text, label, href) {
    const link = document.createElement("a");
    link.href = href;
    link.textContent = label;
    this.banner.replaceChildren(`${text} `, link);
  }

  loginUrl() {
    const next = encodeURIComponent(location.pathname);
    return `${this.banner.dataset.loginUrl ?? "/"}?next=${next}`;
  }
}
