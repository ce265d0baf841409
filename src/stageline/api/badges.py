"""Flat status badges (the shields.io "flat" style that GitLab and Woodpecker draw too): a grey
label on the left, the status on its colour on the right, 20 px high.

Text widths are estimated from Verdana's advance widths at 11 px, as shields.io does, so that the
text fits its half without a font on the server. The SVG is built with ElementTree, so a label
holding `<` or `&` is escaped.
"""

from xml.etree import ElementTree

from stageline.domain.monitors import BadgeLook

MEDIA_TYPE = "image/svg+xml; charset=utf-8"
LABEL_COLOUR = "#555"
FONT = "Verdana,Geneva,DejaVu Sans,sans-serif"
PADDING_PX = 10
"""Five pixels either side of each half's text."""
LABEL_MAX_CHARS = 64

_WIDTHS: dict[str, float] = {
    " ": 3.9, "!": 4.7, '"': 5.5, "#": 9.2, "$": 7.0, "%": 11.9, "&": 8.0, "'": 3.0,
    "(": 4.6, ")": 4.6, "*": 7.0, "+": 9.2, ",": 4.0, "-": 5.0, ".": 4.0, "/": 4.9,
    ":": 4.9, ";": 4.9, "<": 9.2, "=": 9.2, ">": 9.2, "?": 6.0, "@": 11.0, "[": 4.6,
    "\\": 4.9, "]": 4.6, "^": 9.2, "_": 7.0, "`": 7.0, "{": 7.0, "|": 4.9, "}": 7.0,
    "~": 9.2,
    "A": 7.5, "B": 7.6, "C": 7.7, "D": 8.5, "E": 7.0, "F": 6.3, "G": 8.5, "H": 8.3,
    "I": 4.6, "J": 5.0, "K": 7.6, "L": 6.1, "M": 9.3, "N": 8.2, "O": 8.7, "P": 6.6,
    "Q": 8.7, "R": 7.7, "S": 7.5, "T": 6.8, "U": 8.1, "V": 7.5, "W": 10.9, "X": 7.5,
    "Y": 6.8, "Z": 7.5,
    "a": 6.7, "b": 6.9, "c": 5.8, "d": 6.9, "e": 6.6, "f": 3.9, "g": 6.9, "h": 7.0,
    "i": 3.0, "j": 3.8, "k": 6.5, "l": 3.0, "m": 10.7, "n": 7.0, "o": 6.7, "p": 6.9,
    "q": 6.9, "r": 4.7, "s": 5.7, "t": 4.3, "u": 7.0, "v": 6.5, "w": 8.9, "x": 6.5,
    "y": 6.5, "z": 5.8,
}  # fmt: skip
"""Verdana's advance widths at 11 px (digits are all 7.0 px)."""
_DIGIT_PX = 7.0
_OTHER_PX = 11.0
"""Characters outside the table (accented, CJK): as wide as an em, so text never overflows."""


def text_width(text: str) -> int:
    """The estimated width of `text` in Verdana 11 px, rounded up."""
    width = sum(
        _WIDTHS.get(c, _DIGIT_PX if c.isdigit() and c.isascii() else _OTHER_PX) for c in text
    )
    return int(-(-width // 1))


def badge_svg(label: str, look: BadgeLook) -> bytes:
    """The badge's SVG document, with a title for screen readers."""
    message = look.message
    left = text_width(label) + PADDING_PX
    right = text_width(message) + PADDING_PX
    width = left + right
    svg = ElementTree.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "width": str(width),
            "height": "20",
            "role": "img",
            "aria-label": f"{label}: {message}",
        },
    )
    ElementTree.SubElement(svg, "title").text = f"{label}: {message}"
    gradient = ElementTree.SubElement(svg, "linearGradient", {"id": "s", "x2": "0", "y2": "100%"})
    ElementTree.SubElement(
        gradient, "stop", {"offset": "0", "stop-color": "#bbb", "stop-opacity": ".1"}
    )
    ElementTree.SubElement(gradient, "stop", {"offset": "1", "stop-opacity": ".1"})
    clip = ElementTree.SubElement(svg, "clipPath", {"id": "r"})
    ElementTree.SubElement(
        clip, "rect", {"width": str(width), "height": "20", "rx": "3", "fill": "#fff"}
    )
    shapes = ElementTree.SubElement(svg, "g", {"clip-path": "url(#r)"})
    ElementTree.SubElement(
        shapes, "rect", {"width": str(left), "height": "20", "fill": LABEL_COLOUR}
    )
    ElementTree.SubElement(
        shapes,
        "rect",
        {"x": str(left), "width": str(right), "height": "20", "fill": look.colour},
    )
    ElementTree.SubElement(shapes, "rect", {"width": str(width), "height": "20", "fill": "url(#s)"})
    texts = ElementTree.SubElement(
        svg,
        "g",
        {"fill": "#fff", "text-anchor": "middle", "font-family": FONT, "font-size": "11"},
    )
    for text, centre in ((label, left / 2), (message, left + right / 2)):
        x = f"{centre:g}"
        shadow = ElementTree.SubElement(
            texts, "text", {"x": x, "y": "15", "fill": "#010101", "fill-opacity": ".3"}
        )
        shadow.text = text
        ElementTree.SubElement(texts, "text", {"x": x, "y": "14"}).text = text
    return ElementTree.tostring(svg, encoding="unicode").encode()
