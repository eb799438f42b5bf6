// @ts-check
/**
 * The small closed set of shapes that cross the front end: protocol v1 message objects and the
 * events every message source yields. The server socket (server.js) and, later, in-browser
 * engines produce the same AnswerEvents, so render.js never knows where tokens came from.
 * This module holds types only; it exports nothing at run time.
 */

/**
 * "sending" is the page's own: a user message not yet acked by the server.
 * @typedef {"sending" | "streaming" | "complete" | "incomplete" | "error"} MessageStatus
 * @typedef {"stop" | "length" | "content_filter" | "stopped" | "error" | "server_restart"} EndReason
 * @typedef {{input_tokens?: number, output_tokens?: number}} Usage
 * @typedef {{kind: string, message: string, ref?: string}} AnswerError
 */

/**
 * A message as protocol.md describes it (ack, start, GET /api/conversations/<id>/).
 * @typedef {object} Message
 * @property {string} id
 * @property {string} [conversation]
 * @property {string | null} [parent]  the message this one follows (null: a first message)
 * @property {"user" | "assistant"} role
 * @property {string} content
 * @property {string} [reasoning]
 * @property {MessageStatus} status
 * @property {EndReason | null} [reason]
 * @property {string | null} [model]  display name of the model that answered
 * @property {Usage | null} [usage]
 * @property {number | null} [ttft_ms]
 * @property {string} [created]
 * @property {number} [seq]
 * @property {AnswerError | null} [error]
 * @property {Attachment[]} [attachments]  a user message's files, in the order sent
 * @property {boolean} [cached]  answered from the response cache (no provider call, no cost)
 */

/**
 * A file with a message (chat/models/attachments.py summary()); `text` only for files kept on
 * this device, `missing` for files an import named but did not bring.
 * @typedef {object} Attachment
 * @property {string} id
 * @property {string} name
 * @property {"image" | "document"} kind
 * @property {string} [media_type]
 * @property {number} [size]
 * @property {number | null} [width]
 * @property {number | null} [height]
 * @property {number | null} [pages]
 * @property {number} [chars]
 * @property {string} [text]
 * @property {boolean} [missing]
 */

/**
 * browser_model: the in-browser model answering it ("browser:<uuid>"); device: kept in this
 * browser only (devicestore.js), never on the server.
 * @typedef {{id: string, title: string, model?: string | null, browser_model?: string | null,
 *   updated?: string, created?: string, pinned?: boolean, device?: boolean,
 *   settings?: {system_prompt: string, temperature: number | null, max_tokens: number | null}}} Conversation
 * @typedef {{id: string, name: string, provider: string, default?: boolean, vision?: boolean, pdf?: boolean,
 *   context_window?: number | null, api_id?: string}} Model
 */

/**
 * More of an answer. Either part may be empty.
 * @typedef {{type: "delta", text: string, reasoning: string, replace?: boolean}} DeltaEvent  replace: the whole text so far (a resume), not more of it
 */

/**
 * The answer is finished, for whatever reason; always the last event of a source.
 * @typedef {object} EndEvent
 * @property {"end"} type
 * @property {MessageStatus} status
 * @property {EndReason | null} reason
 * @property {Usage | null} usage
 * @property {AnswerError | null} error
 * @property {number | null} [ttft_ms]  time to first token, as the server measured it
 * @property {boolean} [cached]  answered from the response cache
 */

/** @typedef {DeltaEvent | EndEvent} AnswerEvent */

/**
 * Everything chat.js reads from the #parley-data script element.
 * @typedef {object} PageData
 * @property {string} user
 * @property {number} protocol
 * @property {string} ws_path
 * @property {Model[]} models
 * @property {Conversation[]} conversations
 * @property {Conversation[]} [pinned]  on the first page only
 * @property {string | null} next
 * @property {{system_prompt: string, temperature: number | null, max_tokens: number | null} | null} settings
 * @property {{display_name: string, theme: string, default_model: string | null, system_prompt: string,
 *   temperature: number | null, max_tokens: number | null}} preferences
 * @property {Conversation | null} conversation
 * @property {Message[]} messages
 * @property {{message_chars: number, frame_chars: number, attachment_bytes?: number,
 *   attachments_per_message?: number}} [limits]
 * @property {import("./engines/index.js").BrowserModel[]} [browser_models]
 */

export {};
