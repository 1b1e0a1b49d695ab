"""The clinic's colours (settings.web) as a Gradio theme for the widget and as CSS variables for
the full page, whose theme app.py does not set: both look like the clinic, from one table."""
from __future__ import annotations

import inspect

import gradio as gr

from bot.errors import ConfigError
from bot.settings import WebSettings


def clinic_colours(web: WebSettings) -> tuple[dict[str, str], dict[str, str]]:
    """Gradio theme variables in the clinic's colour: (light mode, dark mode)."""
    primary, on_primary = web.primary_color, web.on_primary_color
    same = {  # the clinic's colour in light and dark mode alike
        "color_accent": primary, "border_color_accent": primary, "loader_color": primary,
        "button_primary_background_fill": primary,
        "button_primary_background_fill_hover": _mix(primary, 0.85, "#000000"),
        "button_primary_text_color": on_primary, "button_primary_border_color": primary,
        "input_border_color_focus": primary, "link_text_color": primary,
    }
    light = {
        **same,
        "color_accent_soft": _mix(primary, 0.12),
        "border_color_accent_subdued": _mix(primary, 0.35),
        # The default subdued grey is too faint for the disclaimer in the greeting and the
        # source labels (WCAG AA asks 4.5:1; this is 5:1 on white, 4.7:1 on the cards' grey).
        "body_text_color_subdued": "#5d6778",
    }
    # In dark mode the clinic's colour as text (citation numbers, links) is lightened until
    # it reads on Gradio's dark greys.
    accent_text = _readable_on(primary, _DARK_CARD, toward="#ffffff")
    dark = {**same, "color_accent": accent_text, "link_text_color": accent_text,
            "color_accent_soft": _mix(primary, 0.35, "#111827"),
            "border_color_accent_subdued": _mix(primary, 0.6, "#111827")}
    return light, dark


def widget_theme(web: WebSettings) -> gr.themes.Base:
    """Gradio's default theme in the clinic's colour (accent, buttons, the user's bubbles)."""
    light, dark = clinic_colours(web)
    theme = gr.themes.Default()
    names = set(inspect.signature(theme.set).parameters)  # not every variable has a _dark twin
    dark_only = {f"{name}_dark": value for name, value in dark.items() if f"{name}_dark" in names}
    return theme.set(**light, **dark_only)


def clinic_css(web: WebSettings) -> str:
    """The same colours as CSS custom properties over Gradio's defaults (the full page)."""
    light, dark = clinic_colours(web)

    def block(selector: str, values: dict[str, str]) -> str:
        body = "; ".join(f"--{name.replace('_', '-')}: {value}" for name, value in values.items())
        return f"{selector} {{ {body}; }}"

    # On the root element, so that Gradio's .dark (set on an element inside it) still wins
    # for every variable this does not set for dark mode.
    return "\n".join([block(":root:root", light), block(":root:root .dark", dark)])


# The greys of Gradio's default theme that text of ours sits on (light mode): the page and the
# bot's bubbles and source cards.
_WHITE, _CARD = "#ffffff", "#fafafa"
_DARK_PAGE, _DARK_CARD = "#0b0f19", "#27272a"  # the dark theme's page and lightest card grey
AA_TEXT = 4.5  # WCAG 2.x 1.4.3, normal-size text
_SUBTITLE_OPACITY = 0.88  # the widget header's subtitle (web/widget.py WIDGET_CSS)


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours, from 1 to 21."""
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def colour_problems(web: WebSettings) -> list[str]:
    """Each place where the clinic's colours would make text fall below 4.5:1, as a sentence;
    empty when all of it is readable."""
    primary, on_primary = web.primary_color, web.on_primary_color
    pairs = [
        ("on_primary_color on primary_color (header, send button, launcher)", on_primary, primary),
        ("the header's subtitle", _mix(on_primary, _SUBTITLE_OPACITY, primary), primary),
        ("primary_color on white (citation numbers, links)", primary, _WHITE),
        ("primary_color on the answer's grey", primary, _CARD),
    ]
    return [f"{where}: {contrast_ratio(fg, bg):.2f}:1, needs {AA_TEXT}:1"
            for where, fg, bg in pairs if contrast_ratio(fg, bg) < AA_TEXT]


def _readable_on(colour: str, background: str, toward: str) -> str:
    """`colour` mixed toward `toward` in small steps until it reads on `background`."""
    for step in range(21):
        mixed = _mix(colour, 1 - step / 20, toward)
        if contrast_ratio(mixed, background) >= AA_TEXT:
            return mixed
    return toward


def _luminance(colour: str) -> float:
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(int(colour[i:i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _mix(colour: str, share: float, other: str = "#ffffff") -> str:
    """`share` of `colour` blended into `other` (both #rrggbb, validated by the settings)."""
    channels = [
        round(share * int(colour[i:i + 2], 16) + (1 - share) * int(other[i:i + 2], 16))
        for i in (1, 3, 5)
    ]
    return "#" + "".join(f"{value:02x}" for value in channels)


def require_readable(web: WebSettings) -> None:
    """Refuse clinic colours that would make the page's or widget's text hard to read."""
    problems = colour_problems(web)
    if problems:
        raise ConfigError(
            "The clinic's colours are hard to read (WCAG AA asks 4.5:1): " + "; ".join(problems)
            + ". Choose a darker web.primary_color or another web.on_primary_color.")
