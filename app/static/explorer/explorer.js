// Dyad Explorer: picks two countries and shows their dossier, read from the public /v1 API.
// Every piece of data reaches the page as text (textContent / createTextNode), never as HTML.
"use strict";

(() => {
  const ROOT = document.body.dataset.root || "";
  const API = `${ROOT}/v1`;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const TYPE_LABELS = {
    relation: "Relations",
    treaty: "Treaty",
    membership: "Membership",
    visit: "Visit",
    trade: "Trade",
    figure: "Figure",
  };
  const number = new Intl.NumberFormat("en");
  const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });

  // ---- DOM helpers: strings become text nodes -------------------------------------------

  function build(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const el = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) =>
    build(document.createElementNS(SVG_NS, tag), attrs, children);
  const $ = (selector) => document.querySelector(selector);

  // Only http(s) links from the data become hrefs (no javascript: or data: URLs).
  function safeUrl(url) {
    if (!url) return null;
    try {
      const parsed = new URL(url);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch {
      return null;
    }
  }

  // ---- The API ---------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function getJSON(path, signal) {
    const response = await fetch(API + path, { headers: { Accept: "application/json" }, signal });
    if (!response.ok) {
      let detail = `The API answered ${response.status}.`;
      try {
        detail = (await response.json()).detail || detail;
      } catch {
        // not a problem document: keep the status line
      }
      throw new ApiError(response.status, detail);
    }
    return response.json();
  }

  // Every item of a page, following offsets (the timeline of a busy pair can be long).
  async function getAll(path) {
    const items = [];
    for (let offset = 0; ; ) {
      const sep = path.includes("?") ? "&" : "?";
      const page = await getJSON(`${path}${sep}limit=500&offset=${offset}`);
      items.push(...page.items);
      offset += page.items.length;
      if (!page.next || page.items.length === 0 || offset >= page.total) return items;
    }
  }

  // Best matches first: an exact code or name, then names that start with the text,
  // then names with a word that does, then the rest in the API's order.
  function matchScore(c, text) {
    const q = text.trim().toLowerCase();
    const name = c.name.toLowerCase();
    if ([c.iso2, c.iso3, c.numeric].some((code) => code.toLowerCase() === q) || name === q) {
      return 0;
    }
    if (name.startsWith(q)) return 1;
    if (name.split(/[\s,()-]+/).some((word) => word.startsWith(q))) return 2;
    return 3;
  }

  function rank(countries, text) {
    return countries
      .map((c, i) => [matchScore(c, text), i, c])
      .sort((x, y) => x[0] - y[0] || x[1] - y[1])
      .map(([, , c]) => c);
  }

  const label = (c) => `${c.name} (${c.iso2})`;

  // A country from what a person typed or a URL holds: any ISO code, a label, or a name.
  async function resolveCountry(text) {
    const t = text.trim();
    if (!t) return null;
    const picked = /\(([A-Za-z]{2})\)$/.exec(t);
    const code = picked ? picked[1] : t;
    if (/^[A-Za-z]{2,3}$|^\d{1,3}$/.test(code)) {
      try {
        return await getJSON(`/countries/${encodeURIComponent(code)}`);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 404) throw error;
      }
    }
    const page = await getJSON(`/countries?q=${encodeURIComponent(t)}&limit=100`);
    const ranked = rank(page.items, t);
    const close = ranked.filter((c) => matchScore(c, t) <= 1);
    if (page.total === 1 || (close.length && matchScore(close[0], t) === 0) || close.length === 1) {
      return ranked[0];
    }
    if (!ranked.length) throw new ApiError(404, `No country is called “${t}”.`);
    const some = ranked.slice(0, 3).map((c) => c.name).join(", ");
    const more = ranked.length > 3 ? "…" : "";
    throw new ApiError(404, `“${t}” could be ${some}${more}: pick one from the list.`);
  }

  // ---- Country pickers: an ARIA combobox over /v1/countries?q= ----------------------------

  class Picker {
    constructor(input, onPick) {
      this.input = input;
      this.onPick = onPick;
      this.country = null;
      this.items = [];
      this.active = -1;
      this.list = el("ul", {
        id: `${input.id}-list`,
        class: "options",
        role: "listbox",
        "aria-label": `${input.labels[0].textContent}: matches`,
        hidden: true,
      });
      input.after(this.list);
      input.setAttribute("role", "combobox");
      input.setAttribute("aria-autocomplete", "list");
      input.setAttribute("aria-expanded", "false");
      input.setAttribute("aria-controls", this.list.id);
      input.addEventListener("input", () => this.typed());
      input.addEventListener("keydown", (event) => this.key(event));
      input.addEventListener("blur", () => this.close());
      // A click on an option must not take the focus (and the list) away first.
      this.list.addEventListener("mousedown", (event) => event.preventDefault());
      this.list.addEventListener("click", (event) => {
        const option = event.target.closest("[role=option]");
        if (option) this.choose(Number(option.dataset.index));
      });
    }

    set(country) {
      this.country = country;
      this.input.value = country ? label(country) : "";
    }

    typed() {
      this.country = null;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.search(), 120);
    }

    async search() {
      const q = this.input.value.trim();
      if (this.pending) this.pending.abort();
      if (!q) return this.close();
      this.pending = new AbortController();
      try {
        const page = await getJSON(
          `/countries?q=${encodeURIComponent(q)}&limit=100`,
          this.pending.signal,
        );
        if (document.activeElement === this.input) this.open(rank(page.items, q).slice(0, 8));
      } catch (error) {
        if (error.name !== "AbortError") this.close();
      }
    }

    open(items) {
      this.items = items;
      this.active = items.length ? 0 : -1;
      this.list.replaceChildren(
        ...items.map((c, i) =>
          el(
            "li",
            { id: `${this.list.id}-${i}`, role: "option", "data-index": i, "data-iso2": c.iso2 },
            el("span", { class: "opt-name" }, c.name),
            el("span", { class: "opt-codes" }, `${c.iso2} · ${c.iso3} · ${c.numeric}`),
          ),
        ),
      );
      if (!items.length) this.list.append(el("li", { class: "none" }, "No country matches"));
      this.list.hidden = false;
      this.input.setAttribute("aria-expanded", "true");
      this.highlight();
    }

    close() {
      this.list.hidden = true;
      this.active = -1;
      this.input.setAttribute("aria-expanded", "false");
      this.input.removeAttribute("aria-activedescendant");
    }

    highlight() {
      for (const option of this.list.querySelectorAll("[role=option]")) {
        const on = Number(option.dataset.index) === this.active;
        option.setAttribute("aria-selected", on ? "true" : "false");
        if (on) {
          this.input.setAttribute("aria-activedescendant", option.id);
          option.scrollIntoView({ block: "nearest" });
        }
      }
    }

    key(event) {
      const open = !this.list.hidden;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!open) return void this.search();
        const step = event.key === "ArrowDown" ? 1 : -1;
        const n = this.items.length;
        if (n) this.active = (this.active + step + n) % n;
        this.highlight();
      } else if (event.key === "Enter" && open && this.active >= 0) {
        event.preventDefault();
        this.choose(this.active);
      } else if (event.key === "Escape" && open) {
        event.preventDefault();
        this.close();
      }
    }

    choose(index) {
      const country = this.items[index];
      if (!country) return;
      this.set(country);
      this.close();
      this.onPick(country);
    }
  }

  // ---- Citations: a focusable mark whose tooltip holds the quote and the source ----------

  let tipCount = 0;

  function describeSource(source, id) {
    if (!source) return id;
    const when = source.published_at ? source.published_at.slice(0, 10) : null;
    return [source.publisher, source.author, when].filter(Boolean).join(", ") || source.title;
  }

  function cites(citations, sources) {
    return el(
      "span",
      { class: "cites" },
      citations.map((citation, i) => {
        const source = sources.get(citation.source);
        const id = `tip-${++tipCount}`;
        const mark = citations.length > 1 ? `source ${i + 1}` : "source";
        return el(
          "span",
          { class: "cite" },
          el("a", { href: `#src-${citation.source}`, "aria-describedby": id }, mark),
          el(
            "span",
            { class: "tip", role: "tooltip", id },
            el("q", {}, citation.quote),
            el("span", { class: "tip-source" }, `— ${describeSource(source, citation.source)}`),
            source ? el("span", { class: "tip-title" }, source.title) : null,
          ),
        );
      }),
    );
  }

  // Escape hides the tooltip under the pointer or focus until it is left (WCAG 1.4.13).
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    for (const cite of document.querySelectorAll(".cite:hover, .cite:focus-within")) {
      cite.classList.add("dismissed");
    }
  });
  for (const type of ["mouseout", "focusout"]) {
    document.addEventListener(type, (event) => {
      const cite = event.target.closest && event.target.closest(".cite.dismissed");
      if (cite && !cite.contains(event.relatedTarget)) cite.classList.remove("dismissed");
    });
  }

  // ---- Formatting ------------------------------------------------------------------------

  const time = (date) => el("time", { datetime: date }, date);
  const humanize = (slug) => slug.charAt(0).toUpperCase() + slug.slice(1).replaceAll("_", " ");

  function amount(value, unit, approximate) {
    const text = `${number.format(value)} ${unit}`;
    return approximate
      ? el("span", { class: "approx", title: "approximate: the source says “about”" }, `≈ ${text}`)
      : text;
  }

  // ---- The trade chart: one SVG per currency, a bar per year and series -------------------

  const SERIES_COLORS = 4;

  function seriesName(t) {
    return t.flow === "turnover" ? "Turnover" : `${t.reporter.name} ${t.flow}s`;
  }

  function niceStep(max, ticks) {
    const raw = max / ticks;
    const power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
    return step || power * 10;
  }

  let chartCount = 0;

  // `names` holds every series of the pair so that a series keeps its colour in every chart.
  function tradeChart(figures, currency, width, names) {
    const uid = ++chartCount;
    const shown = names.filter((name) => figures.some((t) => seriesName(t) === name));
    const colour = (t) => names.indexOf(seriesName(t)) % SERIES_COLORS;
    const present = [...new Set(figures.map((t) => t.year))].sort((x, y) => x - y);
    const [first, last] = [present[0], present[present.length - 1]];
    // Missing years stay visible as gaps, unless the series is too sparse for that to help.
    const years =
      last - first < 40 ? Array.from({ length: last - first + 1 }, (_, i) => first + i) : present;
    const height = 260;
    const left = 62;
    const right = width - 12;
    const top = 22;
    const bottom = height - 46;
    const max = Math.max(...figures.map((t) => t.value)) || 1;
    const step = niceStep(max, 4);
    const ceiling = Math.ceil(max / step) * step;
    const y = (v) => bottom - (v / ceiling) * (bottom - top);
    const band = (right - left) / years.length;
    const barW = Math.min(56, (band * 0.75) / shown.length);
    const text = (x, yy, cls, content, attrs) =>
      svg("text", { x, y: yy, class: cls, "text-anchor": "middle", ...attrs }, content);
    const about = (t) => (t.approximate ? "about " : "");

    const chart = svg("svg", {
      class: "chart",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": `Trade in ${currency} by year: ${figures
        .map((t) => `${t.year} ${seriesName(t)} ${about(t)}${number.format(t.value)}`)
        .join("; ")}`,
    });
    // Approximate values are hatched: a pattern per series colour.
    chart.append(
      svg(
        "defs",
        {},
        Array.from({ length: SERIES_COLORS }, (_, s) =>
          svg(
            "pattern",
            {
              id: `hatch-${uid}-${s}`,
              width: 6,
              height: 6,
              patternUnits: "userSpaceOnUse",
              patternTransform: "rotate(45)",
            },
            svg("rect", { width: 6, height: 6, class: "hatch-bg" }),
            svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: `hatch-line s${s}` }),
          ),
        ),
      ),
    );

    const axes = svg("g", { class: "axes" });
    for (let v = 0; v <= ceiling + step / 2; v += step) {
      axes.append(
        svg("line", { class: "grid", x1: left, x2: right, y1: y(v), y2: y(v) }),
        text(left - 6, y(v), "tick", compact.format(v), { "text-anchor": "end", dy: "0.32em" }),
      );
    }
    const every = Math.max(1, Math.ceil(34 / band)); // year labels must not overlap
    years.forEach((year, i) => {
      if (i % every === 0) axes.append(text(left + band * (i + 0.5), bottom + 16, "tick", year));
    });
    axes.append(
      svg("line", { class: "axis", x1: left, x2: right, y1: y(0), y2: y(0) }),
      text((left + right) / 2, height - 6, "axis-title", "Year"),
      text(0, 0, "axis-title", `Value (${currency})`, {
        transform: `translate(14 ${(top + bottom) / 2}) rotate(-90)`,
      }),
    );
    chart.append(axes);

    const labelled = years.length * shown.length <= 12;
    const bars = svg("g", { class: "bars" });
    for (const t of figures) {
      const slot = shown.indexOf(seriesName(t));
      const x =
        left + band * years.indexOf(t.year) + (band - barW * shown.length) / 2 + slot * barW;
      const c = colour(t);
      const value = `${number.format(t.value)} ${currency}`;
      const short = `${t.approximate ? "≈" : ""}${compact.format(t.value)}`;
      bars.append(
        svg(
          "g",
          { class: "bar", "data-year": t.year, "data-flow": t.flow },
          svg("title", {}, `${t.year} · ${seriesName(t)}: ${t.approximate ? "≈ " : ""}${value}`),
          svg("rect", {
            class: t.approximate ? `approx edge-s${c}` : `solid s${c}`,
            fill: t.approximate ? `url(#hatch-${uid}-${c})` : null,
            x: x + 1,
            y: y(t.value),
            width: Math.max(1, barW - 2),
            height: Math.max(1, y(0) - y(t.value)),
          }),
          labelled ? text(x + barW / 2, y(t.value) - 6, "value", short) : null,
        ),
      );
    }
    chart.append(bars);

    const swatch = (cls) => el("span", { class: `swatch ${cls}`, "aria-hidden": "true" });
    const legend = el(
      "ul",
      { class: "legend" },
      shown.map((name) => el("li", {}, swatch(`s${names.indexOf(name) % SERIES_COLORS}`), name)),
      figures.some((t) => t.approximate) ? el("li", {}, swatch("hatched"), "≈ approximate") : null,
    );
    return el(
      "figure",
      { class: "trade-chart", "data-currency": currency },
      el("figcaption", {}, `Trade by year, in ${currency}`),
      legend,
      chart,
    );
  }

  const chartWidth = (holder) => Math.max(260, Math.floor(holder.clientWidth));

  function drawCharts(holder, trade) {
    holder.dataset.width = chartWidth(holder);
    const turnoverFirst = (x, y) => (y === "Turnover") - (x === "Turnover") || x.localeCompare(y);
    const names = [...new Set(trade.map(seriesName))].sort(turnoverFirst);
    const count = (c) => trade.filter((t) => t.currency === c).length;
    // The currency with the most figures first.
    const currencies = [...new Set(trade.map((t) => t.currency))].sort(
      (x, y) => count(y) - count(x) || x.localeCompare(y),
    );
    holder.replaceChildren(
      ...currencies.map((c) =>
        tradeChart(
          trade.filter((t) => t.currency === c),
          c,
          chartWidth(holder),
          names,
        ),
      ),
    );
  }

  // ---- The pair view ---------------------------------------------------------------------

  const section = (id, title, ...content) =>
    el(
      "section",
      { id, class: "card", "aria-labelledby": `${id}-title` },
      el("h3", { id: `${id}-title` }, title),
      content,
    );
  const empty = (text) => el("p", { class: "empty" }, text);
  // A fact's element is the box its citations' tooltips are laid out in.
  const fact = (tag, attrs, ...children) =>
    el(tag, { ...attrs, class: `fact ${attrs.class || ""}`.trim() }, children);

  // What the dossier adds to a timeline entry: the place and description of a treaty,
  // the people of a visit, the description of a figure.
  function detailsOf(entry, dossier) {
    const find = (list) => list.find((record) => record.id === entry.id);
    if (entry.type === "treaty") {
      const t = find(dossier.treaties);
      return t && [t.signed_place ? `Signed in ${t.signed_place}.` : "", t.description || ""];
    }
    if (entry.type === "visit") {
      const v = find(dossier.visits);
      return v && v.participants.map((p) => `${p.person.name} (${p.role.replaceAll("_", " ")})`);
    }
    if (entry.type === "figure") {
      const f = find(dossier.figures);
      return f && [f.description || ""];
    }
    return null;
  }

  function timelineSection(timeline, dossier, sources) {
    const list = el(
      "ol",
      { class: "timeline" },
      timeline.map((entry) => {
        const details = (detailsOf(entry, dossier) || []).filter(Boolean);
        const glue = entry.type === "visit" ? ", " : " ";
        return fact(
          "li",
          { class: `event type-${entry.type}`, "data-type": entry.type, "data-date": entry.date },
          el("div", { class: "when" }, time(entry.date)),
          el(
            "div",
            { class: "what" },
            el("span", { class: `kind kind-${entry.type}` }, TYPE_LABELS[entry.type] || entry.type),
            el("p", { class: "title" }, entry.title),
            details.length ? el("p", { class: "detail" }, details.join(glue)) : null,
            cites(entry.sources, sources),
          ),
        );
      }),
    );
    // The timeline holds dated facts only; the rest is listed under it.
    const undated = [
      ...dossier.treaties.filter((t) => !t.signed).map((t) => [t.title, t.sources]),
      ...dossier.figures
        .filter((f) => !f.as_of)
        .map((f) => [
          [`${humanize(f.metric)}: `, amount(f.value, f.unit, f.approximate)],
          f.sources,
        ]),
    ];
    return section(
      "timeline",
      "Timeline",
      timeline.length ? list : empty("No dated facts for this pair."),
      undated.length
        ? [
            el("h4", {}, "Undated"),
            el(
              "ul",
              { class: "plain" },
              undated.map(([text, cited]) => fact("li", {}, text, " ", cites(cited, sources))),
            ),
          ]
        : null,
    );
  }

  function tradeSection(trade, sources) {
    if (!trade.length) return section("trade", "Trade", empty("No trade figures for this pair."));
    const holder = el("div", { class: "charts" });
    const list = el(
      "ul",
      { class: "plain trade-list" },
      trade.map((t) =>
        fact(
          "li",
          { "data-year": t.year },
          el("strong", {}, String(t.year)),
          ` · ${seriesName(t)}: `,
          amount(t.value, t.currency, t.approximate),
          " ",
          cites(t.sources, sources),
        ),
      ),
    );
    charts = { holder, trade };
    return section("trade", "Trade", holder, list);
  }

  function relationsSection(relations, sources) {
    if (!relations.length) return null;
    return section(
      "relations",
      "Diplomatic relations",
      relations.map((r) => [
        fact(
          "p",
          {},
          r.established ? ["Established in ", time(r.established), ". "] : "Established. ",
          cites(r.sources, sources),
        ),
        el(
          "ul",
          { class: "plain notes" },
          r.notes.map((n) => fact("li", {}, n.text, " ", cites(n.sources, sources))),
        ),
      ]),
    );
  }

  function organizationsSection(orgs, sources) {
    const title = "Shared organizations";
    if (!orgs.length) return section("organizations", title, empty("No shared organizations."));
    const member = (m) =>
      fact(
        "li",
        {},
        `${m.country.name} member`,
        m.since ? [" since ", time(m.since)] : "",
        " ",
        cites(m.sources, sources),
      );
    return section(
      "organizations",
      title,
      el(
        "ul",
        { class: "plain orgs" },
        orgs.map((o) =>
          el(
            "li",
            {},
            el("strong", {}, o.acronym || o.name),
            o.acronym ? el("span", { class: "muted" }, ` ${o.name}`) : null,
            el("ul", { class: "members" }, o.members.map(member)),
          ),
        ),
      ),
    );
  }

  function routesSection(routes, sources) {
    if (!routes.length) {
      return section("routes", "Routes", empty("No transport route through both."));
    }
    const figure = (f) =>
      fact(
        "li",
        {},
        `${humanize(f.metric)}: `,
        amount(f.value, f.unit, f.approximate),
        f.as_of ? [" (as of ", time(f.as_of), ")"] : "",
        " ",
        cites(f.sources, sources),
      );
    return section(
      "routes",
      "Routes",
      el(
        "ul",
        { class: "plain routes" },
        routes.map((r) =>
          el(
            "li",
            {},
            fact(
              "p",
              {},
              el("strong", {}, r.name),
              r.acronym ? ` (${r.acronym}) ` : " ",
              cites(r.sources, sources),
            ),
            r.description ? el("p", { class: "detail" }, r.description) : null,
            el("p", { class: "detail" }, `Through ${r.countries.map((c) => c.name).join(" → ")}`),
            r.figures.length ? el("ul", { class: "figures" }, r.figures.map(figure)) : null,
          ),
        ),
      ),
    );
  }

  function sourcesSection(list) {
    const entry = (s) => {
      const url = safeUrl(s.url);
      const api = `${API}/sources/${encodeURIComponent(s.id)}`;
      return el(
        "li",
        { id: `src-${s.id}`, tabindex: -1 },
        url
          ? el("a", { href: url, rel: "noopener noreferrer external" }, s.title)
          : el("cite", {}, s.title),
        el("span", { class: "muted" }, ` — ${describeSource(s, s.id)}`),
        s.notes ? el("p", { class: "detail" }, s.notes) : null,
        el(
          "p",
          { class: "links" },
          url ? null : "No public address recorded. ",
          el("a", { href: api }, "This source in the API (JSON)"),
        ),
      );
    };
    return section("sources", "Sources", el("ol", { class: "sources" }, list.map(entry)));
  }

  const SECTIONS = [
    "diplomatic_relations",
    "treaties",
    "visits",
    "trade",
    "figures",
    "shared_organizations",
    "routes",
  ];

  function renderPair(dossier, timeline) {
    const [a, b] = dossier.countries;
    const codes = (c) => `${c.iso2} · ${c.iso3} · ${c.numeric}`;
    const sources = new Map(dossier.sources.map((s) => [s.id, s]));
    const heading = el(
      "div",
      { class: "pair-head" },
      el("h2", {}, `${a.name} and ${b.name}`),
      el("p", { class: "muted" }, `${codes(a)} — ${codes(b)}`),
    );
    charts = null;
    if (SECTIONS.every((key) => dossier[key].length === 0)) {
      $("#result").replaceChildren(
        heading,
        el(
          "p",
          { class: "card none" },
          `No sourced facts tie ${a.name} and ${b.name} yet: no diplomatic relations, treaties, `,
          "visits, trade figures, shared organizations or routes are recorded for this pair.",
        ),
      );
      return;
    }
    $("#result").replaceChildren(
      heading,
      el(
        "div",
        { class: "sections" },
        timelineSection(timeline, dossier, sources),
        tradeSection(dossier.trade, sources),
        relationsSection(dossier.diplomatic_relations, sources),
        organizationsSection(dossier.shared_organizations, sources),
        routesSection(dossier.routes, sources),
        sourcesSection(dossier.sources),
      ),
    );
    if (charts) drawCharts(charts.holder, charts.trade);
  }

  // The charts are drawn at the width they get, and again when that changes.
  let charts = null;
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (charts && Number(charts.holder.dataset.width) !== chartWidth(charts.holder)) {
        drawCharts(charts.holder, charts.trade);
      }
    }, 100);
  });

  // ---- State: the pair lives in the URL --------------------------------------------------

  const status = $("#status");
  const say = (text, kind) => {
    status.textContent = text;
    status.className = `status ${kind || ""}`.trim();
  };
  let shown = null; // "KZ/AZ" of the pair on screen
  let loads = 0;

  // Shows a pair and puts it in the URL (a new history entry when `push`).
  async function showPair(a, b, push) {
    const result = $("#result");
    if (a.iso2 === b.iso2) {
      say(`Pick two different countries: both are ${a.name}.`, "error");
      return;
    }
    writeUrl(a, b, push);
    const key = `${a.iso2}/${b.iso2}`;
    const mine = ++loads;
    say(`Loading ${a.name} and ${b.name}…`);
    result.setAttribute("aria-busy", "true");
    try {
      const pair = `/relations/${encodeURIComponent(a.iso2)}/${encodeURIComponent(b.iso2)}`;
      const [dossier, timeline] = await Promise.all([getJSON(pair), getAll(`${pair}/timeline`)]);
      if (mine !== loads) return;
      renderPair(dossier, timeline);
      shown = key;
      document.title = `${a.name} and ${b.name} · Dyad Explorer`;
      say("");
    } catch (error) {
      if (mine === loads) say(error.message, "error");
    } finally {
      if (mine === loads) result.removeAttribute("aria-busy");
    }
  }

  function intro() {
    shown = null;
    document.title = "Dyad Explorer";
    $("#result").replaceChildren(
      el(
        "p",
        { class: "card hint" },
        "Type a name or any ISO code (alpha-2, alpha-3 or numeric) in both boxes. For example: ",
        el("a", { href: `${ROOT}/?a=KZ&b=AZ` }, "Kazakhstan and Azerbaijan"),
        ".",
      ),
    );
  }

  function writeUrl(a, b, push) {
    const url = new URL(window.location.href);
    url.searchParams.set("a", a.iso2);
    url.searchParams.set("b", b.iso2);
    if (push) url.hash = "";
    if (url.href === window.location.href) return;
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
  }

  async function fromUrl() {
    const params = new URLSearchParams(window.location.search);
    const [ta, tb] = [params.get("a") || "", params.get("b") || ""];
    if (!ta && !tb) return intro();
    try {
      const [a, b] = await Promise.all([resolveCountry(ta), resolveCountry(tb)]);
      pickers.a.set(a);
      pickers.b.set(b);
      if (!a || !b) {
        intro();
        return void (a ? pickers.b : pickers.a).input.focus();
      }
      if (`${a.iso2}/${b.iso2}` === shown) return;
      await showPair(a, b, false);
    } catch (error) {
      say(error.message, "error");
    }
  }

  async function submit() {
    try {
      const [a, b] = await Promise.all(
        [pickers.a, pickers.b].map(async (p) => {
          if (!p.country) p.set(await resolveCountry(p.input.value));
          return p.country;
        }),
      );
      if (!a || !b) {
        say("Pick a country in both boxes.", "error");
        return void (a ? pickers.b : pickers.a).input.focus();
      }
      await showPair(a, b, true);
    } catch (error) {
      say(error.message, "error");
    }
  }

  // Picking one country shows the pair when the other is known, else moves to the other box.
  const pickers = {};
  const picked = (other) => () =>
    pickers[other].country ? submit() : pickers[other].input.focus();
  pickers.a = new Picker($("#pick-a"), picked("b"));
  pickers.b = new Picker($("#pick-b"), picked("a"));

  $("#pair").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  $("#swap").addEventListener("click", () => {
    const a = pickers.a.country;
    const b = pickers.b.country;
    const [ta, tb] = [pickers.a.input.value, pickers.b.input.value];
    pickers.a.set(b);
    pickers.b.set(a);
    if (!b) pickers.a.input.value = tb;
    if (!a) pickers.b.input.value = ta;
    if (a && b) submit();
  });
  // Back and forward move between pairs; a jump to a source (#src-...) keeps the pair.
  window.addEventListener("popstate", () => fromUrl());
  fromUrl();
})();
