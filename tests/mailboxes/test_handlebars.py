"""The Handlebars of templates (``mailboxes.handlebars``): pure functions, no servers. The
expected outputs are what Handlebars.js gives for the same template and data."""

from __future__ import annotations

import pytest

from mailboxes import handlebars
from mailboxes.handlebars import TemplateError, render_text

CONTEXT = {
    "params": {"name": "<Jo & 'Ann'>", "n": 3, "f": 1.5, "whole": 2.0, "z": 0, "flag": True,
               "items": [{"t": "a"}, {"t": "b"}], "obj": {"x": 1, "y": 2}, "empty": [],
               "list": ["p", 1, None, True], "nested": {"deep": {"er": "!"}}},
    "account": {"name": "Acc", "email": "a@example.test"},
}


@pytest.mark.parametrize(("source", "expected"), [
    ("Hi {{params.name}}!", "Hi &lt;Jo &amp; &#x27;Ann&#x27;&gt;!"),
    ("Hi {{{params.name}}}!", "Hi <Jo & 'Ann'>!"),
    ("{{& params.name}}", "<Jo & 'Ann'>"),
    ("{{params.n}} {{params.f}} {{params.whole}} {{params.z}} {{params.flag}}|"
     "{{params.missing}}|{{params.missing.deeper}}|", "3 1.5 2 0 true|||"),
    ("{{params.list}} {{params.obj}}", "p,1,,true [object Object]"),
    ("{{params.nested.deep.er}} {{params/nested/deep/er}}", "! !"),
    ("{{#if params.z}}y{{else}}n{{/if}}", "n"),
    ("{{#if params.empty}}y{{else if params.n}}m{{else}}n{{/if}}", "m"),
    ("{{#if params.z}}a{{else if params.empty}}b{{else if params.flag}}c{{/if}}", "c"),
    ("{{#if params.obj}}obj{{/if}}{{#if params.items}}items{{/if}}", "objitems"),
    ("{{#unless params.z}}u{{else}}v{{/unless}}", "u"),
    ("{{#each params.items}}{{@index}}:{{t}}{{#if @last}}.{{else}},{{/if}}{{/each}}",
     "0:a,1:b."),
    ("{{#each params.items}}{{#if @first}}[{{/if}}{{this.t}}{{/each}}", "[ab"),
    ("{{#each params.obj}}{{@key}}{{this}};{{/each}}", "x1;y2;"),
    ("{{#each params.empty}}x{{else}}none{{/each}}{{#each params.missing}}x{{/each}}", "none"),
    ("{{#each params.items}}{{../params.n}}{{@root.account.name}}{{/each}}", "3Acc3Acc"),
    ("{{#with account}}{{name}} <{{email}}> {{../params.n}}{{/with}}", "Acc <a@example.test> 3"),
    ("{{#with params.missing}}x{{else}}gone{{/with}}", "gone"),
    ('{{insert params.missing "default=Customer"}} {{insert params.n "default=x"}}',
     "Customer 3"),
    ("a {{! c }}b{{!-- {{x}} }} --}}c", "a bc"),
    ("a   {{~params.n~}}   b\n{{~params.n}}", "a3b3"),
    ("\\{{params.n}} {{params.n}}", "{{params.n}} 3"),
    ("{{params.items.length}} {{params.items.1.t}}", "2 b"),
    ("{{params.n}}=`x`", "3=`x`"),
    ("", ""),
])
def test_renders_as_handlebars_does(source, expected):
    assert render_text(source, CONTEXT) == expected


@pytest.mark.parametrize(("source", "says"), [
    ("{{#if x}}", "never closed"),
    ("{{/if}}", "no block to close"),
    ("{{#if a}}{{/each}}", "{{/each}} where {{/if}} was expected"),
    ("{{> partial}}", "partials"),
    ("{{#foo x}}{{/foo}}", "#foo is not supported"),
    ("{{lookup a b}}", "'lookup' is not supported"),
    ("{{x (y)}}", "subexpressions"),
    ("{{x y=1}}", "hash arguments"),
    ("{{a", "never closed"),
    ("line\n{{#each}}{{/each}}", "Line 2: #each takes one value"),
    ("a\n\n{{#if x}}", "Line 3: {{#if}} is never closed"),
    ("{{else}}", "outside a block"),
    ("{{#if a}}{{else}}{{else}}{{/if}}", "outside a block"),
])
def test_what_is_not_supported_is_refused_in_words(source, says):
    with pytest.raises(TemplateError) as caught:
        handlebars.parse(source)
    assert says in str(caught.value)


def test_a_render_that_grows_past_the_bound_stops(monkeypatch):
    monkeypatch.setattr(handlebars, "MAX_OUTPUT", 1000)
    with pytest.raises(TemplateError, match="longer than 1000"):
        render_text("{{#each params}}{{#each ../params}}xxxxxxxxxx{{/each}}{{/each}}",
                    {"params": list(range(20))})


def test_loops_in_loops_that_write_nothing_stop():
    source = "{{#each params}}" * 6 + "{{#if x}}{{/if}}" + "{{/each}}" * 6
    with pytest.raises(TemplateError, match="steps to render"):
        render_text(source.replace("{{#each params}}", "{{#each @root.params}}"),
                    {"params": list(range(40))})


def test_blocks_nested_too_deep_are_refused():
    with pytest.raises(TemplateError, match="nested deeper"):
        handlebars.parse("{{#if a}}" * (handlebars.MAX_DEPTH + 2))
