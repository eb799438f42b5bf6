// @ts-check
/**
 * The near-budget warning. After an answer the server sends a `budget` frame once a budget
 * is four-fifths spent (chat/sending.py warn_if_near_budget); this shows it above the chat,
 * says it to screen readers, and stays away once dismissed until something new is to be said
 * (the budget used up, or the next period's).
 */

/** @typedef {import("./socket.js").ChatSocket} ChatSocket */
/**
 * One entry of the frame's `budgets` (chat.budgets.Standing.as_json).
 * @typedef {{period: string, scope: string, max_tokens: number | null, used_tokens: number,
 *   max_cost: string | null, used_cost: string, currency: string, resets_at: string, fraction: number}} Standing
 */

const PERIOD = { day: "daily", month: "monthly" };

/** @param {Standing} b */
function spentText(b) {
  const parts = [];
  if (b.max_tokens !== null) parts.push(`${b.used_tokens.toLocaleString()} of ${b.max_tokens.toLocaleString()} tokens`);
  if (b.max_cost !== null) parts.push(`${b.currency} ${Number(b.used_cost).toFixed(2)} of ${Number(b.max_cost).toFixed(2)}`);
  return parts.join("; ");
}

/** @param {Standing} b */
export function budgetText(b) {
  const kind = PERIOD[/** @type {keyof PERIOD} */ (b.period)] ?? b.period;
  const when = new Date(b.resets_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  const spent = spentText(b);
  if (b.fraction >= 1) {
    return `You have used all of your ${kind} budget (${spent}). New messages will be refused until it resets on ${when}.`;
  }
  return `You have used ${Math.floor(b.fraction * 100)} % of your ${kind} budget (${spent}). It resets on ${when}.`;
}

export class BudgetNotice {
  /**
   * @param {HTMLElement} box  #budget-notice: a .budget-text and a dismiss button
   * @param {ChatSocket} socket
   * @param {(text: string) => void} say  for screen readers
   */
  constructor(box, socket, say) {
    this.box = box;
    this.text = /** @type {HTMLElement} */ (box.querySelector(".budget-text"));
    this.say = say;
    /** What was dismissed: one key per budget, period and "used up or not". @type {Set<string>} */
    this.dismissed = new Set();
    /** @type {string} */
    this.key = "";
    box.querySelector("button")?.addEventListener("click", () => this.dismiss());
    socket.on("budget", (frame) => this.show(frame.budgets ?? []));
  }

  /** @param {Standing[]} budgets */
  show(budgets) {
    // The most spent one speaks for all: a used-up budget is what the next send runs into.
    const worst = [...budgets].sort((a, b) => b.fraction - a.fraction)[0];
    if (!worst) return;
    const key = `${worst.period}:${worst.resets_at}:${worst.fraction >= 1 ? "all" : "near"}`;
    if (this.dismissed.has(key)) return;
    const text = budgetText(worst);
    this.key = key;
    this.text.textContent = text;
    this.box.dataset.level = worst.fraction >= 1 ? "exceeded" : "near";
    this.box.hidden = false;
    this.say(text);
  }

  dismiss() {
    this.dismissed.add(this.key);
    this.box.hidden = true;
  }
}
