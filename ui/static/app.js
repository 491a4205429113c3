// Citation links ([n] in an answer, href="#src-n"). Without this script they are plain
// anchors: the browser jumps to the card and styles it with :target. With it, only the
// sources panel scrolls (the chat stays where it is), the card gets .is-target (same style
// as :target), a collapsed abstract opens, and the card flashes, also on a repeated click.
// Runs once per page (js_on_load of the sources panel).
if (!window.__paperAssistantCite) {
  window.__paperAssistantCite = true;
  // Is enough of the element on screen to see a card in it?
  const onScreen = (el) => {
    const r = el.getBoundingClientRect();
    return r.top < window.innerHeight - 80 && r.bottom > 80;
  };
  const show = (id, tries) => {
    const card = document.getElementById(id);
    if (!card) {
      if (tries > 0) setTimeout(() => show(id, tries - 1), 100);
      return;
    }
    document.querySelectorAll(".src-card.is-target").forEach((c) => c.classList.remove("is-target"));
    card.classList.add("is-target", "flash");
    const details = card.querySelector("details");
    if (details) details.open = true;
    const box = card.closest("#pa-sources");
    if (box) {
      const top = card.getBoundingClientRect().top - box.getBoundingClientRect().top;
      box.scrollTo({ top: box.scrollTop + top - 8, behavior: "smooth" });
    }
    // Stacked layout (narrow screens): the panel is off screen, so the page scrolls too.
    if (!box || !onScreen(box)) card.scrollIntoView({ behavior: "smooth", block: "start" });
    setTimeout(() => card.classList.remove("flash"), 1600);
  };
  document.addEventListener("click", (event) => {
    const link = event.target.closest ? event.target.closest('a[href^="#src-"]') : null;
    if (!link) return;
    event.preventDefault();
    const id = link.getAttribute("href").slice(1);
    history.replaceState(null, "", "#" + id);
    show(id, 10);
  }, true);
}

// The chatbot's copy buttons copy a message's source text, which holds our markup (the
// [n] links, the facts line, character references for escaped text). Clean it on the way
// to the clipboard: "[n]" stays, the facts line goes, &#91; & co. become characters again.
// Only strings carrying our markers are touched; everything else is copied unchanged.
if (!window.__paperAssistantCopy && navigator.clipboard && navigator.clipboard.writeText) {
  window.__paperAssistantCopy = true;
  const writeText = navigator.clipboard.writeText.bind(navigator.clipboard);
  const decoder = document.createElement("textarea"); // decodes character references
  const clean = (text) => {
    if (typeof text !== "string" || !/class="(cite|facts|cite-wrap)"|&#\d+;|&(lt|gt|amp|quot);/.test(text)) {
      return text;
    }
    const plain = text
      .replace(/\s*<small class="facts">[\s\S]*?<\/small>/g, "")
      .replace(/<span class="cite-tip"[^>]*>[\s\S]*?<\/span>/g, "")
      .replace(/ ?<span class="claim-flag[^"]*">[\s\S]*?<\/span>/g, "")
      .replace(/<span class="cite-wrap">([\s\S]*?)<\/span>/g, "$1")
      .replace(/<a class="cite" href="#src-\d+"[^>]*>(\[\d+\])<\/a>/g, "$1");
    decoder.innerHTML = plain.replace(/</g, "&lt;"); // no tag can survive: text only
    return decoder.value;
  };
  navigator.clipboard.writeText = (text) => writeText(clean(text));
}

// Evidence tooltips of [n] (ui/render.py, .cite-tip): shown by CSS on hover/focus, moved here
// so they stay inside the chat column (whose edges would clip them) and open upwards near its
// bottom.
if (!window.__paperAssistantTips) {
  window.__paperAssistantTips = true;
  const place = (event) => {
    const wrap = event.target.closest ? event.target.closest(".cite-wrap") : null;
    const tip = wrap ? wrap.querySelector(".cite-tip") : null;
    if (!tip) return;
    const box = (wrap.closest("#pa-chat") || document.body).getBoundingClientRect();
    const r = wrap.getBoundingClientRect();
    const width = Math.min(360, box.width - 24);
    tip.style.maxWidth = width + "px";
    const overflow = r.left + width - (box.right - 12);
    tip.style.left = (overflow > 0 ? Math.max(box.left + 8 - r.left, -overflow) : 0) + "px";
    const below = r.bottom < box.top + box.height * 0.6;
    tip.style.top = below ? "1.5em" : "auto";
    tip.style.bottom = below ? "auto" : "1.5em";
  };
  document.addEventListener("mouseover", place, true);
  document.addEventListener("focusin", place, true);
}
