"""User markdown is rendered, and anything executable is removed."""

import pytest

from annotations.core.markdown import markdown_to_safe_html


@pytest.mark.parametrize(
    "evil",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="https://x.org" onclick="alert(1)">x</a>',
        "<iframe src=https://evil.example></iframe>",
        '<p style="background:url(javascript:alert(1))">x</p>',
    ],
)
def test_executable_content_is_removed(evil):
    html = markdown_to_safe_html(evil)
    for needle in ("<script", "onerror", "javascript:", "onclick", "<iframe", "style="):
        assert needle not in html


def test_markdown_still_renders():
    html = markdown_to_safe_html(
        "# Guidelines\n\n- **Refusal**: declines\n\n[study](https://arxiv.org/abs/2403.13213)"
    )
    assert "<h1>Guidelines</h1>" in html
    assert "<strong>Refusal</strong>" in html
    assert 'href="https://arxiv.org/abs/2403.13213"' in html
    assert 'rel="noopener noreferrer"' in html
