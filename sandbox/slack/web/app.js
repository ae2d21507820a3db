/* A Slack-like page over the Slack stand-in (sandbox/slack): pick a person, type
 * /invoices, click the bot's buttons, fill in and submit its modals.
 *
 * Everything a person does goes to the stand-in's /_standin/act/* endpoints, which
 * send the app the same signed requests Slack would. What the app shows comes back
 * from /_standin/messages and /_standin/views; /_standin/wait (long-poll) says when
 * to look again.
 *
 * Text from the app is never parsed as HTML: every node is built with
 * createElement/textContent, and links only ever get http(s)/mailto URLs.
 */
"use strict";

(function () {
  // ---------------------------------------------------------------- constants
  const EMOJI = {
    warning: "⚠️", white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", hourglass: "⌛",
    hourglass_flowing_sand: "⏳", information_source: "ℹ️", lock: "🔒", bank: "🏦", tada: "🎉",
    rotating_light: "🚨", credit_card: "💳", moneybag: "💰", money_with_wings: "💸", receipt: "🧾",
    wave: "👋", bell: "🔔", memo: "📝", page_facing_up: "📄", mag: "🔍", no_entry: "⛔",
    no_entry_sign: "🚫", thumbsup: "👍", "+1": "👍", eyes: "👀", rocket: "🚀", calendar: "📅",
    date: "📅", bulb: "💡", exclamation: "❗", question: "❓", arrows_counterclockwise: "🔄",
    link: "🔗", email: "📧", euro: "💶", dollar: "💵", yen: "💴", pound: "💷", smile: "😄",
    slightly_smiling_face: "🙂", red_circle: "🔴", large_green_circle: "🟢", large_yellow_circle: "🟡",
    robot_face: "🤖", gear: "⚙️", key: "🔑", shield: "🛡️", stopwatch: "⏱️", clock3: "🕒",
    heavy_plus_sign: "➕", point_right: "👉", sparkles: "✨", construction: "🚧", zzz: "💤",
  };
  const COMMANDS = [
    { name: "/invoices", hint: "[overdue | profile name | invoice number | notify #channel | help]",
      description: "List the invoices you can pay, and pay them", app: true },
    { name: "/invite", hint: "@invoicebot", description: "Add someone (or an app) to this channel", app: false },
  ];
  const BOT_NAME = "invoicebot";
  const WAIT_TIMEOUT_S = 20;
  const HOME = "HOME"; // the app's Home tab in the sidebar (not a channel)

  // ---------------------------------------------------------------- state
  const S = {
    userId: null,
    channelId: "C_BILLING",
    users: new Map(),          // id -> user
    channels: [],              // stand-in channels (with members)
    version: -1,               // last stand-in version seen
    messages: [],              // every message visible to the user
    topView: null,             // the open modal on top of the user's stack
    home: null,                // the Home tab the app published for the user (views.publish)
    drafts: new Map(),         // view id -> Map("block/action" -> value typed/chosen here)
    clientErrors: new Map(),   // view id -> {block_id: message} (Slack client's own checks)
    rendered: new Map(),       // message id -> {sig, node}
    renderedFor: "",
    modalKey: "",
    lastSeen: new Map(),       // "user|channel" -> highest message number read
    submitting: false,
    refreshing: null,
    refreshAgain: false,
    slashIndex: 0,
  };

  // ---------------------------------------------------------------- DOM helpers
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === null || value === undefined || value === false) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = value;
        else if (key === "dataset") Object.assign(node.dataset, value);
        else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** An absolute http(s)/mailto URL, or null: nothing else ever becomes a link. */
  function safeUrl(raw) {
    if (!/^(https?:\/\/|mailto:)/i.test(String(raw))) return null;
    try {
      const url = new URL(String(raw));
      return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function toast(text, kind) {
    const node = h("div", { class: "toast" + (kind ? " toast-" + kind : ""), role: "status", text });
    document.getElementById("toasts").append(node);
    setTimeout(() => node.remove(), 6000);
  }

  async function getJson(path) {
    const response = await fetch(path, { cache: "no-store" });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  async function act(kind, body) {
    const response = await fetch(`/_standin/act/${kind}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: S.userId, ...body }),
    });
    let data = {};
    try { data = await response.json(); } catch (_) { /* empty */ }
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    if (data.error && data.error !== "client_validation") {
      toast(`The app did not answer in time (${data.error}).`, "error");
    } else if (data.status && data.status !== 200) {
      toast(`The app answered HTTP ${data.status}.`, "error");
    }
    return data;
  }

  // ---------------------------------------------------------------- text: mrkdwn & plain_text
  function unescapeEntities(text) {
    return text.replace(/&(amp|lt|gt);/g, (_, name) => ({ amp: "&", lt: "<", gt: ">" })[name]);
  }

  const INLINE_SOURCE = [
    "(`[^`\\n]+`)",                                        // 1 `code`
    "(<[^<>\\n]+>)",                                        // 2 <link|label>, <@U…>, <#C…>, <!here>
    "((?<![\\w*])\\*(?=\\S)[^*\\n]*?\\S\\*(?![\\w*]))",    // 3 *bold*
    "((?<![\\w_])_(?=\\S)[^_\\n]*?\\S_(?![\\w_]))",         // 4 _italic_
    "((?<![\\w~])~(?=\\S)[^~\\n]*?\\S~(?![\\w~]))",         // 5 ~strike~
    "(:[a-z0-9_+'-]+:)",                                    // 6 :emoji:
  ].join("|");

  function emojiNode(code) {
    const glyph = EMOJI[code];
    return glyph ? h("span", { class: "emoji", title: `:${code}:`, text: glyph }) : null;
  }

  function inline(text, parent) {
    const re = new RegExp(INLINE_SOURCE, "g");
    let pos = 0;
    while (pos < text.length) {
      re.lastIndex = pos;
      const m = re.exec(text);
      if (!m) break;
      if (m.index > pos) parent.append(unescapeEntities(text.slice(pos, m.index)));
      const token = m[0];
      let used = token.length;
      if (m[1]) parent.append(h("code", { class: "md-code", text: unescapeEntities(token.slice(1, -1)) }));
      else if (m[2]) parent.append(angle(token.slice(1, -1)));
      else if (m[3]) inline(token.slice(1, -1), parent.appendChild(h("b")));
      else if (m[4]) inline(token.slice(1, -1), parent.appendChild(h("i")));
      else if (m[5]) inline(token.slice(1, -1), parent.appendChild(h("s")));
      else {
        const node = emojiNode(token.slice(1, -1));
        if (node) parent.append(node);
        else { parent.append(":"); used = 1; } // not an emoji we know: keep the text
      }
      pos = m.index + used;
    }
    if (pos < text.length) parent.append(unescapeEntities(text.slice(pos)));
  }

  function angle(inner) {
    const bar = inner.indexOf("|");
    const target = bar >= 0 ? inner.slice(0, bar) : inner;
    const label = bar >= 0 ? unescapeEntities(inner.slice(bar + 1)) : "";
    if (target.startsWith("@")) {
      const user = S.users.get(target.slice(1));
      return h("span", { class: "mention", text: "@" + (user ? displayName(user) : label || target.slice(1)) });
    }
    if (target.startsWith("#")) {
      const channel = S.channels.find((c) => c.id === target.slice(1));
      return h("span", { class: "mention", text: "#" + (channel ? channel.name : label || target.slice(1)) });
    }
    if (target.startsWith("!")) {
      const special = target.slice(1).split("^")[0];
      if (["here", "channel", "everyone"].includes(special)) return h("span", { class: "mention", text: "@" + special });
      return document.createTextNode(label || unescapeEntities(target));
    }
    const url = safeUrl(unescapeEntities(target));
    const shown = label || unescapeEntities(target);
    if (!url) return document.createTextNode(shown);
    return h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: shown });
  }

  function mrkdwn(text, parent) {
    const parts = String(text).split("```");
    parts.forEach((part, index) => {
      const isCode = index % 2 === 1 && index < parts.length - 1;
      if (isCode) {
        parent.append(h("pre", { class: "md-pre", text: unescapeEntities(part.replace(/^\n/, "")) }));
        return;
      }
      if (index % 2 === 1) part = "```" + part; // an unclosed fence is just text
      if (index > 0) part = part.replace(/^\n/, "");
      let quote = null;
      let needBreak = false;
      part.split("\n").forEach((line) => {
        const q = /^(&gt;|>) ?/.exec(line);
        if (q) {
          if (!quote) { quote = h("blockquote", { class: "md-quote" }); parent.append(quote); }
          else quote.append(h("br"));
          inline(line.slice(q[0].length), quote);
          needBreak = false;
          return;
        }
        quote = null;
        if (needBreak) parent.append(h("br"));
        inline(line, parent);
        needBreak = true;
      });
    });
  }

  function plain(text, parent, emoji) {
    const str = String(text ?? "");
    if (!emoji) { parent.append(str); return; }
    const re = /:([a-z0-9_+'-]+):/g;
    let pos = 0;
    let m;
    while ((m = re.exec(str))) {
      const node = emojiNode(m[1]);
      if (!node) { re.lastIndex = m.index + 1; continue; }
      if (m.index > pos) parent.append(str.slice(pos, m.index));
      parent.append(node);
      pos = m.index + m[0].length;
    }
    if (pos < str.length) parent.append(str.slice(pos));
  }

  /** A text object (plain_text or mrkdwn) as a node. */
  function textNode(obj, cls) {
    const node = h("span", { class: cls || null });
    if (obj === null || obj === undefined) return node;
    if (typeof obj === "string") { node.append(obj); return node; }
    if (obj.type === "mrkdwn") { node.classList.add("md"); mrkdwn(obj.text || "", node); }
    else plain(obj.text, node, obj.emoji !== false);
    return node;
  }

  /** A text object flattened to a string (for <option> and titles). */
  function textString(obj) {
    if (obj === null || obj === undefined) return "";
    if (typeof obj === "string") return obj;
    return textNode(obj).textContent;
  }

  function displayName(user) {
    return user.real_name || user.name || user.id;
  }

  // ---------------------------------------------------------------- Block Kit
  function renderBlocks(blocks, ctx) {
    return (blocks || []).map((block) => renderBlock(block, ctx));
  }

  function renderBlock(block, ctx) {
    const type = String(block.type || "unknown");
    const node = h("div", { class: `block b-${type}`, dataset: { blockId: block.block_id || "", blockType: type } });
    switch (type) {
      case "header":
        node.append(textNode(block.text, "b-header-text"));
        break;
      case "section": {
        const body = h("div", { class: "b-section-body" });
        if (block.text) body.append(h("div", { class: "b-section-text" }, textNode(block.text)));
        if (block.fields && block.fields.length) {
          body.append(h("div", { class: "b-fields" }, block.fields.map((f) => h("div", { class: "b-field" }, textNode(f)))));
        }
        node.append(body);
        if (block.accessory) node.append(h("div", { class: "b-accessory" }, renderElement(block.accessory, block, ctx)));
        break;
      }
      case "context":
        for (const el of block.elements || []) {
          if (el.type === "image") node.append(image(el, "b-context-image"));
          else node.append(textNode(el, "b-context-text"));
        }
        break;
      case "divider":
        node.append(h("hr"));
        break;
      case "actions":
        node.append(h("div", { class: "b-actions-row" }, (block.elements || []).map((el) => renderElement(el, block, ctx))));
        break;
      case "input":
        renderInput(block, ctx, node);
        break;
      case "image":
        if (block.title) node.append(textNode(block.title, "b-image-title"));
        node.append(image(block, "b-image-img"));
        break;
      case "rich_text":
        node.append(richText(block.elements || []));
        break;
      default:
        node.append(h("span", { class: "b-unknown", text: `(a "${type}" block, which this stand-in does not draw)` }));
    }
    return node;
  }

  function image(el, cls) {
    const url = safeUrl(el.image_url);
    if (!url) return h("span", { class: "b-unknown", text: el.alt_text || "(image)" });
    return h("img", { class: cls, src: url, alt: el.alt_text || "", loading: "lazy" });
  }

  function richText(elements) {
    const out = h("div", { class: "md" });
    const leaf = (el) => {
      if (el.type === "link") {
        const url = safeUrl(el.url);
        return url ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: el.text || el.url }) : el.text || "";
      }
      if (el.type === "emoji") return emojiNode(el.name) || `:${el.name}:`;
      if (el.type === "user") return h("span", { class: "mention", text: "@" + (S.users.has(el.user_id) ? displayName(S.users.get(el.user_id)) : el.user_id) });
      const node = h(el.style && el.style.code ? "code" : "span", { class: el.style && el.style.code ? "md-code" : null, text: el.text || "" });
      if (el.style && el.style.bold) node.style.fontWeight = "700";
      if (el.style && el.style.italic) node.style.fontStyle = "italic";
      return node;
    };
    for (const part of elements) {
      if (part.type === "rich_text_list") {
        out.append(h(part.style === "ordered" ? "ol" : "ul", null, (part.elements || []).map((item) => h("li", null, (item.elements || []).map(leaf)))));
      } else if (part.type === "rich_text_preformatted") {
        out.append(h("pre", { class: "md-pre" }, (part.elements || []).map(leaf)));
      } else if (part.type === "rich_text_quote") {
        out.append(h("blockquote", { class: "md-quote" }, (part.elements || []).map(leaf)));
      } else {
        out.append(h("div", null, (part.elements || []).map(leaf)));
      }
    }
    return out;
  }

  /** An interactive element outside input blocks: buttons, selects, overflow menus. */
  function renderElement(el, block, ctx) {
    const actionId = el.action_id || "";
    switch (el.type) {
      case "button": {
        const cls = "btn" + (el.style === "primary" ? " btn-primary" : el.style === "danger" ? " btn-danger" : "");
        const url = el.url ? safeUrl(el.url) : null;
        if (url) {
          // Slack opens the link itself and also tells the app (block_actions).
          const link = h("a", { class: cls + " btn-link", href: url, target: "_blank", rel: "noopener noreferrer",
                                role: "button", dataset: { actionId } },
                         textNode(el.text), h("span", { class: "btn-ext", "aria-hidden": "true", text: "↗" }));
          link.addEventListener("click", () => { sendAction(null, ctx, block, el, {}); });
          return link;
        }
        const button = h("button", { type: "button", class: cls, dataset: { actionId } }, textNode(el.text));
        button.addEventListener("click", () => {
          if (el.confirm && !window.confirm(confirmText(el.confirm))) return;
          sendAction(button, ctx, block, el, { value: el.value });
        });
        return button;
      }
      case "static_select":
      case "overflow": {
        const isOverflow = el.type === "overflow";
        const select = h("select", { class: isOverflow ? "select select-overflow" : "select", dataset: { actionId },
                                     "aria-label": isOverflow ? "More actions" : textString(el.placeholder) || "Select" });
        select.append(h("option", { value: "", text: isOverflow ? "⋯" : textString(el.placeholder) || "Select an item" }));
        appendOptions(select, el);
        if (el.initial_option) select.value = el.initial_option.value;
        select.addEventListener("change", () => {
          const value = select.value;
          if (isOverflow) select.value = "";
          if (value) sendAction(select, ctx, block, el, { selected_option: value });
        });
        return select;
      }
      case "image":
        return image(el, "b-accessory-image");
      default:
        return h("span", { class: "b-unknown", text: `(${el.type})` });
    }
  }

  function confirmText(confirm) {
    return [textString(confirm.title), textString(confirm.text)].filter(Boolean).join("\n\n");
  }

  function appendOptions(select, el) {
    const option = (o) => h("option", { value: o.value, text: textString(o.text) });
    for (const o of el.options || []) select.append(option(o));
    for (const group of el.option_groups || []) {
      select.append(h("optgroup", { label: textString(group.label) }, (group.options || []).map(option)));
    }
  }

  async function sendAction(node, ctx, block, el, extra) {
    const body = { action_id: el.action_id, block_id: block.block_id, ...extra };
    if (ctx.kind === "view") body.view_id = ctx.viewId;
    else body.message_id = ctx.messageId;
    if (node) { node.classList.add("is-busy"); node.disabled = true; }
    try {
      await act("click", body);
    } catch (error) {
      toast(error.message, "error");
    } finally {
      if (node) { node.classList.remove("is-busy"); node.disabled = false; }
    }
  }

  // ---------------------------------------------------------------- input blocks (modals)
  function draftsFor(viewId) {
    if (!S.drafts.has(viewId)) S.drafts.set(viewId, new Map());
    return S.drafts.get(viewId);
  }

  function renderInput(block, ctx, node) {
    const el = block.element || {};
    const key = `${block.block_id}/${el.action_id}`;
    const id = `input-${block.block_id}-${el.action_id}`.replace(/[^A-Za-z0-9_-]/g, "_");
    node.append(h("label", { class: "b-input-label", for: id }, textNode(block.label),
                  block.optional ? h("span", { class: "b-optional", text: " (optional)" }) : null));
    const drafts = ctx.kind === "view" ? draftsFor(ctx.viewId) : new Map();
    const entry = ((ctx.state || {})[block.block_id] || {})[el.action_id] || {};
    const remember = (value) => drafts.set(key, value);
    node.append(inputControl(el, id, key, drafts, entry, remember, ctx, block));
    if (block.hint) node.append(h("div", { class: "b-hint" }, textNode(block.hint)));
    const error = (ctx.errors || {})[block.block_id];
    if (error) {
      node.classList.add("has-error");
      node.append(h("div", { class: "input-error", role: "alert", text: String(error) }));
    }
  }

  function dispatchesOnEnter(block, el) {
    // Slack sends a block action (and submits nothing) when an input block dispatches
    // actions on Enter: `dispatch_action` on the block, on_enter_pressed in the element's config.
    if (!block || !block.dispatch_action) return false;
    const on = ((el.dispatch_action_config || {}).trigger_actions_on) || ["on_enter_pressed"];
    return on.includes("on_enter_pressed");
  }

  function inputControl(el, id, key, drafts, entry, remember, ctx, block) {
    const has = drafts.has(key);
    const draft = drafts.get(key);
    switch (el.type) {
      case "plain_text_input":
      case "number_input":
      case "email_text_input":
      case "url_text_input": {
        const value = has ? draft : entry.value ?? el.initial_value ?? "";
        const input = el.multiline
          ? h("textarea", { id, class: "text-input", rows: 4 })
          : h("input", { id, class: "text-input", type: el.type === "email_text_input" ? "email" : "text",
                         inputmode: el.type === "number_input" ? "decimal" : null });
        input.value = value;
        if (el.placeholder) input.placeholder = textString(el.placeholder);
        if (el.max_length) input.maxLength = el.max_length;
        input.dataset.actionId = el.action_id || "";
        input.addEventListener("input", () => remember(input.value));
        if (!el.multiline) {
          input.addEventListener("keydown", (event) => {
            if (event.key !== "Enter" || ctx.kind !== "view") return;
            event.preventDefault();
            if (dispatchesOnEnter(block, el)) sendAction(null, ctx, block, el, { value: input.value });
            else submitModal();
          });
        }
        return input;
      }
      case "static_select": {
        const select = h("select", { id, class: "select select-input", dataset: { actionId: el.action_id || "" } });
        const current = has ? draft : (entry.selected_option || el.initial_option || {}).value;
        if (!current) select.append(h("option", { value: "", text: textString(el.placeholder) || "Select an item" }));
        appendOptions(select, el);
        select.value = current || "";
        select.addEventListener("change", () => remember(select.value || null));
        return select;
      }
      case "radio_buttons":
      case "checkboxes": {
        const multi = el.type === "checkboxes";
        const chosen = has ? draft : multi
          ? (entry.selected_options || el.initial_options || []).map((o) => o.value)
          : (entry.selected_option || el.initial_option || {}).value;
        const group = h("div", { id, class: "choice-group", role: multi ? "group" : "radiogroup" });
        for (const o of el.options || []) {
          const box = h("input", { type: multi ? "checkbox" : "radio", name: id, value: o.value });
          box.checked = multi ? (chosen || []).includes(o.value) : chosen === o.value;
          box.addEventListener("change", () => {
            if (multi) remember([...group.querySelectorAll("input:checked")].map((b) => b.value));
            else remember(box.value);
          });
          group.append(h("label", { class: "choice" }, box, textNode(o.text)));
        }
        return group;
      }
      case "users_select":
      case "multi_users_select":
      case "conversations_select":
      case "channels_select": {
        // Slack's pickers of people and channels: the workspace's people, the channels you see.
        const multi = el.type.startsWith("multi_");
        const people = el.type.includes("users");
        const choices = people
          ? [...S.users.values()].filter((u) => !u.is_bot).map((u) => [u.id, displayName(u)])
          : visibleChannels().map((c) => [c.id, "#" + (c.name || c.id)]);
        const current = has ? draft : people
          ? (multi ? entry.selected_users || el.initial_users || [] : entry.selected_user || el.initial_user)
          : entry.selected_conversation || entry.selected_channel || el.initial_conversation || el.initial_channel;
        const select = h("select", { id, class: "select select-input", multiple: multi,
                                     dataset: { actionId: el.action_id || "" } });
        if (!multi && !current) select.append(h("option", { value: "", text: textString(el.placeholder) || "Select an item" }));
        for (const [value, label] of choices) {
          const option = h("option", { value, text: label });
          option.selected = multi ? (current || []).includes(value) : current === value;
          select.append(option);
        }
        select.addEventListener("change", () => remember(
          multi ? [...select.selectedOptions].map((o) => o.value) : select.value || null));
        return select;
      }
      case "datepicker":
      case "timepicker": {
        const input = h("input", { id, class: "text-input", type: el.type === "datepicker" ? "date" : "time" });
        input.value = has ? draft : entry.selected_date || entry.selected_time || el.initial_date || el.initial_time || "";
        input.addEventListener("change", () => remember(input.value || null));
        return input;
      }
      default:
        return h("span", { class: "b-unknown", text: `(a "${el.type}" input, which this stand-in does not draw)` });
    }
  }

  // ---------------------------------------------------------------- the modal
  function modalKey(entry) {
    if (!entry) return "";
    return JSON.stringify([entry.id, entry.hash, entry.errors, entry.last_response_error,
                           S.clientErrors.get(entry.id) || null, S.submitting]);
  }

  function renderModal() {
    const root = document.getElementById("modal-root");
    const entry = S.topView;
    const key = modalKey(entry);
    if (key === S.modalKey) return;
    S.modalKey = key;
    if (!entry) { root.replaceChildren(); return; }

    // Keep the caret and the scroll position across a re-render.
    const focused = document.activeElement && root.contains(document.activeElement) ? document.activeElement : null;
    const focusId = focused ? focused.id : null;
    const selection = focused && "selectionStart" in focused ? [focused.selectionStart, focused.selectionEnd] : null;
    const oldBody = root.querySelector(".modal-body");
    const scroll = oldBody ? oldBody.scrollTop : 0;

    const view = entry.view;
    const ctx = { kind: "view", viewId: entry.id, state: (view.state || {}).values || {},
                  errors: { ...(entry.errors || {}), ...(S.clientErrors.get(entry.id) || {}) } };
    const back = view.previous_view_id
      ? h("button", { type: "button", class: "modal-back", "aria-label": "Back", onclick: closeModal, text: "‹" }) : null;
    const submit = view.submit
      ? h("button", { type: "button", class: "btn btn-lg btn-primary modal-submit" + (S.submitting ? " is-busy" : ""),
                      disabled: S.submitting, onclick: submitModal }, textNode(view.submit))
      : null;
    const modal = h("div", { class: "modal", role: "dialog", "aria-modal": "true", "aria-labelledby": "modal-title",
                             dataset: { viewId: entry.id, callbackId: view.callback_id || "" } },
      h("div", { class: "modal-header" },
        back,
        h("span", { class: "modal-app", "aria-hidden": "true", text: "🧾" }),
        h("h2", { id: "modal-title", class: "modal-title" }, textNode(view.title)),
        h("button", { type: "button", class: "modal-x", "aria-label": "Close", onclick: closeModal, text: "✕" })),
      h("div", { class: "modal-body" }, renderBlocks(view.blocks, ctx)),
      entry.last_response_error ? h("div", { class: "modal-trouble", role: "alert", text: entry.last_response_error }) : null,
      h("div", { class: "modal-footer" },
        h("button", { type: "button", class: "btn btn-lg modal-close", onclick: closeModal },
          textNode(view.close || { type: "plain_text", text: "Cancel" })),
        submit));
    root.replaceChildren(h("div", { class: "modal-overlay" }, modal));

    const body = root.querySelector(".modal-body");
    body.scrollTop = scroll;
    const again = focusId ? document.getElementById(focusId) : null;
    if (again) {
      again.focus();
      if (selection && "setSelectionRange" in again) {
        try { again.setSelectionRange(selection[0], selection[1]); } catch (_) { /* not a text field */ }
      }
    }
  }

  function collectValues(viewId) {
    const values = {};
    for (const [key, value] of draftsFor(viewId)) {
      const slash = key.indexOf("/");
      const blockId = key.slice(0, slash);
      const actionId = key.slice(slash + 1);
      (values[blockId] = values[blockId] || {})[actionId] = value;
    }
    return values;
  }

  async function submitModal() {
    const entry = S.topView;
    if (!entry || !entry.view.submit || S.submitting) return;
    S.submitting = true;
    renderModal();
    try {
      const result = await act("submit", { view_id: entry.id, values: collectValues(entry.id) });
      if (result.error === "client_validation") S.clientErrors.set(entry.id, result.client_errors || {});
      else S.clientErrors.delete(entry.id);
    } catch (error) {
      toast(error.message, "error");
    } finally {
      S.submitting = false;
      await refresh();
      renderModal();
    }
  }

  async function closeModal() {
    const entry = S.topView;
    if (!entry) return;
    try {
      await act("close", { view_id: entry.id });
    } catch (error) {
      toast(error.message, "error");
    }
    await refresh();
  }

  // ---------------------------------------------------------------- messages
  function messageNumber(message) {
    return parseInt(String(message.id).replace(/\D/g, ""), 10) || 0;
  }

  function currentChannelKey() {
    return `${S.userId}|${S.channelId}`;
  }

  function dmChannelId(userId) {
    return "D" + (userId.startsWith("U") ? userId.slice(1) : userId);
  }

  function renderMessage(message) {
    if (message.source === "channel_join") { // Slack's own one-line notice, not a message by anyone
      const body = h("div", { class: "msg-body system-text" });
      body.append(textNode({ type: "mrkdwn", text: message.text || "" }));
      return h("div", { class: "message is-system", dataset: { messageId: message.id, source: message.source,
                                                              ephemeral: String(!!message.ephemeral) } },
        h("div", { class: "avatar avatar-system", "aria-hidden": "true", text: "➕" }), h("div", { class: "msg-main" }, body));
    }
    const isError = message.source === "slack_error";
    const author = isError ? "Slackbot" : message.bot_posted ? BOT_NAME : "someone";
    const when = new Date(parseFloat(message.ts) * 1000);
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const ctx = { kind: "message", messageId: message.id };
    const body = h("div", { class: "msg-body" });
    if (message.blocks && message.blocks.length) append(body, renderBlocks(message.blocks, ctx));
    else body.append(textNode({ type: "mrkdwn", text: message.text || "" }));
    return h("div", { class: "message" + (message.ephemeral ? " is-ephemeral" : ""),
                      dataset: { messageId: message.id, source: message.source, ephemeral: String(!!message.ephemeral) } },
      h("div", { class: "avatar" + (isError ? " avatar-slackbot" : ""), "aria-hidden": "true", text: isError ? "💬" : "🧾" }),
      h("div", { class: "msg-main" },
        h("div", { class: "msg-head" },
          h("span", { class: "msg-author", text: author }),
          isError ? null : h("span", { class: "app-badge", text: "APP" }),
          h("time", { class: "msg-time", datetime: when.toISOString(), text: time }),
          message.edited_count ? h("span", { class: "msg-edited", text: "(edited)" }) : null),
        message.ephemeral ? h("div", { class: "ephemeral-note" },
          h("span", { "aria-hidden": "true", text: "👁 " }), "Only visible to you") : null,
        body));
  }

  function channelIntro() {
    const channel = S.channels.find((c) => c.id === S.channelId);
    const user = S.users.get(S.userId);
    const intro = h("div", { class: "channel-intro" });
    if (S.channelId === dmChannelId(S.userId || "")) {
      intro.append(h("h2", { text: BOT_NAME }),
        h("p", { text: `This is the very beginning of your direct message history with ${BOT_NAME}.` }));
    } else {
      const name = channel ? channel.name : S.channelId;
      intro.append(h("h2", { text: (channel && channel.is_private ? "🔒 " : "# ") + name }),
        h("p", null, "This is the very beginning of the ", h("b", { text: "#" + name }),
          " channel. invoicebot posts payment notifications in #billing."));
    }
    intro.append(h("details", { class: "guide", open: true },
      h("summary", { text: "Demo guide" }),
      h("ul", null,
        h("li", null, "You are ", h("b", { text: user ? displayName(user) : "nobody" }),
          ". Switch person in the sidebar: Fiona sees every billing profile, Emil only Acme GmbH, Sam, Nina and Nobody get an explanation instead."),
        h("li", null, "Type ", h("code", { class: "md-code", text: "/invoices" }), " and press Enter, then ",
          h("b", { text: "Pay Now" }), " on an invoice."),
        h("li", null, "Saved methods: Visa •••• 4242 (the default), Mastercard •••• 4444, Visa •••• 0341 (declined when charged), Visa •••• 3155 (needs 3-D Secure) and a SEPA bank account (a bank debit: Processing for about 20 seconds, then cleared)."),
        h("li", null, h("b", { text: "Add a new card" }), " opens the sandbox's Stripe page in a new tab; its test card numbers are listed there."),
        h("li", null, h("code", { class: "md-code", text: "/invoices notify #billing" }),
          " chooses where payment notifications go (Fiona is a billing-profile admin). For the private #finance-private, type ",
          h("code", { class: "md-code", text: "/invite @invoicebot" }), " in it first."))));
    return intro;
  }

  function renderHome(container) {
    // The app's Home tab: the view it published for this person, its buttons clickable.
    S.renderedFor = "";
    S.rendered.clear();
    const home = S.home;
    const sig = JSON.stringify(home ? home.view.blocks : null);
    if (container.dataset.homeSig === sig && container.querySelector(".home-tab")) return;
    container.dataset.homeSig = sig;
    const tab = h("div", { class: "home-tab", dataset: { viewId: home ? home.id : "" } });
    if (home) append(tab, renderBlocks(home.view.blocks, { kind: "view", viewId: home.id }));
    else tab.append(h("p", { class: "channel-intro", text: "Opening the Home tab…" }));
    container.replaceChildren(tab);
  }

  function renderMessages() {
    const container = document.getElementById("messages");
    if (S.channelId === HOME) { renderHome(container); return; }
    delete container.dataset.homeSig;
    const key = currentChannelKey();
    if (S.renderedFor !== key) {
      S.renderedFor = key;
      S.rendered.clear();
      container.replaceChildren(channelIntro());
    }
    const shown = S.messages.filter((m) => m.channel === S.channelId);
    const nearBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 80;
    let added = false;
    const keep = new Set();
    let previous = container.firstChild; // the channel intro
    for (const message of shown) {
      keep.add(message.id);
      const sig = JSON.stringify([message.text, message.blocks, message.edited_count]);
      let item = S.rendered.get(message.id);
      if (!item || item.sig !== sig) {
        const node = renderMessage(message);
        if (item) item.node.replaceWith(node);
        else added = true;
        item = { sig, node };
        S.rendered.set(message.id, item);
      }
      if (previous.nextSibling !== item.node) previous.after(item.node);
      previous = item.node;
    }
    for (const [id, item] of S.rendered) {
      if (!keep.has(id)) { item.node.remove(); S.rendered.delete(id); }
    }
    if (added && nearBottom) container.scrollTop = container.scrollHeight;
    const newest = shown.reduce((max, m) => Math.max(max, messageNumber(m)), 0);
    S.lastSeen.set(key, Math.max(S.lastSeen.get(key) || 0, newest));
  }

  // ---------------------------------------------------------------- sidebar
  function visibleChannels() {
    const me = S.users.get(S.userId);
    const team = me ? me.team_id : null;
    return S.channels.filter((c) => !c.is_im && (!c.team_id || !team || c.team_id === team)
      && (!c.is_private || !c.members || c.members.includes(S.userId)));
  }

  function renderSidebar() {
    const picker = document.getElementById("user-picker");
    const users = [...S.users.values()].filter((u) => !u.is_bot);
    const signature = JSON.stringify(users.map((u) => [u.id, u.real_name, (u.profile || {}).email]));
    if (picker.dataset.signature !== signature) {
      picker.dataset.signature = signature;
      picker.replaceChildren(...users.map((u) => h("option", { value: u.id, text: displayName(u) })));
    }
    picker.value = S.userId;
    const me = S.users.get(S.userId);
    document.getElementById("who-detail").textContent = me ? ((me.profile || {}).email || "no email address") : "";

    const unread = (channelId) => {
      const seen = S.lastSeen.get(`${S.userId}|${channelId}`) || 0;
      return S.messages.filter((m) => m.channel === channelId && messageNumber(m) > seen).length;
    };
    const item = (channelId, label, icon) => {
      const count = channelId === S.channelId ? 0 : unread(channelId);
      return h("li", null, h("button", {
        type: "button", class: "nav-item" + (channelId === S.channelId ? " is-active" : "") + (count ? " is-unread" : ""),
        dataset: { channelId }, onclick: () => switchChannel(channelId),
      }, h("span", { class: "nav-icon", "aria-hidden": "true", text: icon }), h("span", { class: "nav-label", text: label }),
         count ? h("span", { class: "nav-badge", text: String(count) }) : null));
    };
    document.getElementById("channel-list").replaceChildren(
      ...visibleChannels().map((c) => item(c.id, c.name, c.is_private ? "🔒" : "#")));
    document.getElementById("app-list").replaceChildren(item(HOME, `${BOT_NAME} · Home`, "🏠"),
                                                        item(dmChannelId(S.userId), BOT_NAME, "🧾"));

    const channel = S.channels.find((c) => c.id === S.channelId);
    const title = document.getElementById("pane-title");
    const input = document.getElementById("composer-input");
    if (S.channelId === HOME) {
      title.replaceChildren(h("span", { text: `${BOT_NAME} · Home` }), h("span", { class: "app-badge", text: "APP" }));
      document.getElementById("pane-topic").textContent = "Your dashboard: what is due, your payments, your settings.";
      input.placeholder = `Message ${BOT_NAME}`;
    } else if (S.channelId === dmChannelId(S.userId)) {
      title.replaceChildren(h("span", { text: BOT_NAME }), h("span", { class: "app-badge", text: "APP" }));
      document.getElementById("pane-topic").textContent = "See and pay your cloud vendor's invoices without leaving Slack.";
      input.placeholder = `Message ${BOT_NAME}`;
    } else {
      const name = channel ? channel.name : S.channelId;
      title.textContent = (channel && channel.is_private ? "🔒 " : "# ") + name;
      document.getElementById("pane-topic").textContent = name === "billing" ? "Payment notifications from invoicebot" : "";
      input.placeholder = `Message #${name}`;
    }
  }

  function switchUser(userId) {
    if (!S.users.has(userId) || userId === S.userId) return;
    S.userId = userId;
    if (S.channelId === HOME) S.home = null;
    else if (S.channelId.startsWith("D")) S.channelId = dmChannelId(userId);
    else if (!visibleChannels().some((c) => c.id === S.channelId)) S.channelId = "C_BILLING";
    S.modalKey = "";
    if (S.channelId === HOME) openHome();
    const url = new URL(window.location.href);
    url.searchParams.set("user", userId);
    window.history.replaceState(null, "", url);
    refresh();
  }

  function setMenuOpen(open) {
    document.body.classList.toggle("is-menu-open", open);
    document.getElementById("menu-toggle").setAttribute("aria-expanded", String(open));
  }

  async function openHome() {
    try { await act("open_home", {}); } catch (error) { toast(error.message, "error"); }
    refresh();
  }

  function switchChannel(channelId) {
    setMenuOpen(false);
    S.channelId = channelId;
    if (channelId === HOME) openHome(); // Slack tells the app (app_home_opened), which publishes the tab
    renderSidebar();
    renderMessages();
    document.getElementById("composer-input").focus();
  }

  // ---------------------------------------------------------------- composer
  function commandChannel() {
    return S.channelId.startsWith("D") || S.channelId === HOME ? S.userId : S.channelId; // a user id means "my DM with the app"
  }

  function localNote(text) {
    const note = h("div", { class: "local-note", role: "status" }, h("span", { "aria-hidden": "true", text: "💬 " }),
                   h("b", { text: "Slackbot: " }), text);
    document.getElementById("messages").append(note);
    note.scrollIntoView({ block: "end" });
    setTimeout(() => note.remove(), 8000);
  }

  async function sendComposer(event) {
    event.preventDefault();
    hideSlashMenu();
    const input = document.getElementById("composer-input");
    const raw = input.value.trim();
    if (!raw) return;
    const match = /^(\/\S+)\s*([\s\S]*)$/.exec(raw);
    if (!match) {
      localNote("This stand-in only plays the app's slash command: type /invoices.");
      return;
    }
    const [, command, text] = match;
    if (!COMMANDS.some((c) => c.name === command)) {
      localNote(`${command} is not a valid command. In this workspace only /invoices (and Slack's own /invite) work.`);
      return;
    }
    if (command === "/invite" && S.channelId.startsWith("D")) {
      localNote("/invite only works in channels: open #billing or another channel first.");
      return;
    }
    input.value = "";
    const form = document.getElementById("composer");
    form.classList.add("is-busy");
    try {
      if (command === "/invite") await act("invite", { text, channel_id: S.channelId });
      else await act("command", { command, text, channel_id: commandChannel() });
    } catch (error) {
      toast(error.message, "error");
    } finally {
      form.classList.remove("is-busy");
    }
    refresh();
  }

  function hideSlashMenu() {
    document.getElementById("slash-menu").hidden = true;
  }

  function updateSlashMenu() {
    const input = document.getElementById("composer-input");
    const menu = document.getElementById("slash-menu");
    const value = input.value;
    const matches = value.startsWith("/") && !/\s/.test(value)
      ? COMMANDS.filter((c) => c.name.startsWith(value.toLowerCase())) : [];
    if (!matches.length) { menu.hidden = true; return; }
    menu.replaceChildren(...matches.map((c) => h("li", {
      class: "slash-item", role: "option",
      onmousedown: (event) => { event.preventDefault(); input.value = c.name + " "; hideSlashMenu(); input.focus(); },
    }, h("b", { text: c.name }), h("span", { class: "slash-hint", text: " " + c.hint }),
       h("div", { class: "slash-description", text: c.description + (c.app ? " · invoicebot" : " · Slack") }))));
    menu.hidden = false;
  }

  // ---------------------------------------------------------------- syncing with the stand-in
  async function loadDirectory() {
    const [users, channels] = await Promise.all([getJson("/_standin/users"), getJson("/_standin/channels")]);
    S.users = new Map(users.users.map((u) => [u.id, u]));
    S.channels = channels.channels;
  }

  async function refresh() {
    // One refresh at a time; a request for another while one runs gets one more after it.
    if (S.refreshing) { S.refreshAgain = true; return S.refreshing; }
    S.refreshing = (async () => {
      do {
        S.refreshAgain = false;
        const user = encodeURIComponent(S.userId);
        const [messages, views, home] = await Promise.all([
          getJson(`/_standin/messages?visible_to=${user}`),
          getJson(`/_standin/views?user_id=${user}&open=1`),
          fetch(`/_standin/home/${user}`, { cache: "no-store" }).then((r) => (r.ok ? r.json() : null)),
          loadDirectory(),
        ]);
        S.home = home;
        S.messages = messages.messages;
        const stack = (views.stacks || {})[S.userId] || [];
        const topId = stack[stack.length - 1];
        S.topView = views.views.find((v) => v.id === topId && v.is_open) || null;
        renderMessages();
        renderSidebar();
        renderModal();
      } while (S.refreshAgain);
    })();
    try { await S.refreshing; } catch (error) { setLive(false); } finally { S.refreshing = null; }
    return undefined;
  }

  function setLive(ok) {
    const live = document.getElementById("live");
    live.textContent = ok ? "● live" : "● reconnecting…";
    live.classList.toggle("is-down", !ok);
  }

  async function watch() {
    for (;;) {
      try {
        const response = await fetch(`/_standin/wait?since=${S.version}&timeout=${WAIT_TIMEOUT_S}`, { cache: "no-store" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const { version } = await response.json();
        setLive(true);
        if (version !== S.version) {
          S.version = version;
          await refresh();
        }
      } catch (_) {
        setLive(false);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  async function start() {
    try {
      await loadDirectory();
    } catch (error) {
      setLive(false);
      setTimeout(start, 1000);
      return;
    }
    const wanted = new URL(window.location.href).searchParams.get("user");
    const humans = [...S.users.values()].filter((u) => !u.is_bot);
    S.userId = S.users.has(wanted) ? wanted : S.users.has("U_FINANCE") ? "U_FINANCE" : (humans[0] || {}).id;
    if (!S.channels.some((c) => c.id === S.channelId)) S.channelId = (visibleChannels()[0] || {}).id || dmChannelId(S.userId);

    document.getElementById("user-picker").addEventListener("change", (event) => { setMenuOpen(false); switchUser(event.target.value); });
    document.getElementById("menu-toggle").addEventListener("click", () => setMenuOpen(!document.body.classList.contains("is-menu-open")));
    document.querySelector(".pane").addEventListener("click", (event) => {
      if (!event.target.closest("#menu-toggle")) setMenuOpen(false); // a tap beside the drawer closes it
    });
    document.getElementById("composer").addEventListener("submit", sendComposer);
    const input = document.getElementById("composer-input");
    input.addEventListener("input", updateSlashMenu);
    input.addEventListener("blur", hideSlashMenu);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Tab" && !document.getElementById("slash-menu").hidden) {
        event.preventDefault();
        const typed = input.value.toLowerCase();
        input.value = (COMMANDS.find((c) => c.name.startsWith(typed)) || COMMANDS[0]).name + " ";
        hideSlashMenu();
      }
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && S.topView) closeModal();
    });
    renderSidebar();
    await refresh();
    document.body.dataset.ready = "true";
    input.focus();
    watch();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
