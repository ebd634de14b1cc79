#!/usr/bin/env python3
"""Check an HTML export with an HTML parser (the standard library's).

    python3 tests/tools/html_check.py PAGE.html...

Prints a JSON summary per page (one line each; with several pages each
names its path): counts of the elements kato writes, and every problem
found. Exits 1 when a page has a problem:
- an element that runs or fetches something (script, img, iframe, object,
  embed, link, base, form, input, meta refresh, svg, math, video, audio…);
- an event-handler attribute (on*), a style attribute, any src/srcset;
- an href with a scheme other than http, https or mailto;
- an end tag that does not close the innermost open element, or an
  element left open (the page's structure was broken by its content).
"""
import json
import re
import sys
from html.parser import HTMLParser

VOID = {"meta", "br", "hr", "wbr", "col", "area", "source", "track", "input", "img",
        "link", "base", "embed", "param"}
FORBIDDEN = {"script", "img", "iframe", "frame", "frameset", "object", "embed", "link",
             "base", "form", "input", "button", "textarea", "select", "svg", "math",
             "video", "audio", "source", "track", "picture", "canvas", "template",
             "noscript", "portal", "applet"}
SAFE_SCHEMES = {"http", "https", "mailto"}
# A document's own head elements kato writes.
ALLOWED_META = {"charset", "viewport", "content-security-policy", "referrer", "generator"}


class Check(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.counts = {}
        self.problems = []

    def problem(self, msg):
        if len(self.problems) < 50:
            self.problems.append(f"line {self.getpos()[0]}: {msg}")

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag in FORBIDDEN:
            self.problem(f"<{tag}> element")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.problem(f"event handler {name} on <{tag}>")
            if name in ("src", "srcset", "style", "action", "formaction", "xlink:href"):
                self.problem(f"attribute {name} on <{tag}>")
            if name == "href":
                squeezed = re.sub(r"[\x00-\x20]", "", value)
                m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", squeezed)
                if m and m.group(1).lower() not in SAFE_SCHEMES:
                    self.problem(f"href with scheme {m.group(1)!r}")
        if tag == "meta":
            d = dict(attrs)
            key = "charset" if "charset" in d else (d.get("name") or d.get("http-equiv") or "").lower()
            if key not in ALLOWED_META:
                self.problem(f"<meta {key}>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problem(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()


def check(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    c = Check()
    c.feed(text)
    c.close()
    if c.stack:
        c.problem(f"left open: {c.stack}")
    if not text.startswith("<!DOCTYPE html>"):
        c.problem("no doctype")
    return {"counts": c.counts, "problems": c.problems}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    failed = False
    for path in sys.argv[1:]:
        r = check(path)
        if len(sys.argv) > 2:
            r["path"] = path
        failed |= bool(r["problems"])
        print(json.dumps(r, sort_keys=True))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
