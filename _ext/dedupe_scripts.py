"""Drop inline scripts that a page lists twice.

Sphinx 7.4 adds an extension's inline script a second time when the extension registers it after the builder started
(sphinx-thebe does): the page then declares `const THEBE_JS_URL` twice and the browser reports a SyntaxError on every
page. Keeping the first copy of each script leaves the page exactly as intended.
"""


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (script.filename or "", tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique


def setup(app):
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
