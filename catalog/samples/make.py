"""Makes the model cards' samples (catalog/samples/<family>.png), ONCE; the PNGs are committed.

Pure Python (zlib + struct), no image library: `python catalog/samples/make.py` rewrites them.
Each is an honest illustration of what a family does (a drawn scene, its before and after, a
film strip), marked ILLUSTRATION in the picture and said to be one in its caption (bot/samples.py):
it is not a model's output, which the bot cannot ship without running the models.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
W, H = 480, 270
Color = tuple[int, int, int]
Painter = Callable[[float, float], Color]  # (x, y) in 0..1 -> colour

SKY_TOP, SKY_LOW = (70, 120, 200), (250, 200, 150)
SUN = (255, 220, 90)
HILL, HILL_FAR = (60, 130, 80), (110, 150, 140)
WATER = (60, 100, 160)
BLACK, WHITE, GREY = (20, 20, 24), (245, 245, 245), (120, 120, 128)

# a 5x7 font for the few capitals the labels use
FONT = {
    "A": "01110 10001 10001 11111 10001 10001 10001", "B": "11110 10001 10001 11110 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111", "F": "11111 10000 10000 11110 10000 10000 10000",
    "I": "01110 00100 00100 00100 00100 00100 01110", "L": "10000 10000 10000 10000 10000 10000 11111",
    "N": "10001 11001 10101 10011 10001 10001 10001", "O": "01110 10001 10001 10001 10001 10001 01110",
    "R": "11110 10001 10001 11110 10100 10010 10001", "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100", "U": "10001 10001 10001 10001 10001 10001 01110",
    " ": "00000 00000 00000 00000 00000 00000 00000",
}


def mix(a: Color, b: Color, t: float) -> Color:
    t = min(1.0, max(0.0, t))
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def landscape(sun_x: float = 0.7, sun_y: float = 0.3, figure: bool = False) -> Painter:
    """A sky, a sun, two lines of hills and a lake; `figure`: a person standing in front."""

    def paint(x: float, y: float) -> Color:
        if figure:
            dx, head = x - 0.35, (x - 0.35) ** 2 + ((y - 0.38) * 0.56) ** 2
            if head < 0.0028:
                return (235, 190, 160)
            if abs(dx) < 0.05 + (y - 0.46) * 0.12 and 0.46 < y < 0.95:
                return (200, 60, 70)
        if (x - sun_x) ** 2 + ((y - sun_y) * 0.56) ** 2 < 0.004:
            return SUN
        far = 0.55 + 0.06 * math.sin(x * 9.0 + 1.0)
        near = 0.68 + 0.07 * math.sin(x * 5.0 + 2.5)
        if y > 0.8:
            return mix(WATER, SKY_LOW, 0.25 + 0.1 * math.sin(y * 90))
        if y > near:
            return mix(HILL, BLACK, (y - near) * 1.5)
        if y > far:
            return HILL_FAR
        return mix(SKY_TOP, SKY_LOW, y / 0.6)

    return paint


def render(paint: Painter) -> list[list[Color]]:
    return [[paint((i + 0.5) / W, (j + 0.5) / H) for i in range(W)] for j in range(H)]


def panel(canvas: list[list[Color]], x0: int, y0: int, w: int, h: int, paint: Painter) -> None:
    for j in range(h):
        for i in range(w):
            canvas[y0 + j][x0 + i] = paint((i + 0.5) / w, (j + 0.5) / h)


def fill(canvas: list[list[Color]], x0: int, y0: int, w: int, h: int, color: Color) -> None:
    for j in range(max(0, y0), min(H, y0 + h)):
        for i in range(max(0, x0), min(W, x0 + w)):
            canvas[j][i] = color


def text(canvas: list[list[Color]], x0: int, y0: int, words: str, color: Color = WHITE, scale: int = 2) -> None:
    for n, char in enumerate(words):
        rows = FONT[char].split()
        for j, row in enumerate(rows):
            for i, bit in enumerate(row):
                if bit == "1":
                    fill(canvas, x0 + (n * 6 + i) * scale, y0 + j * scale, scale, scale, color)


def label(canvas: list[list[Color]]) -> None:
    """ILLUSTRATION in the bottom right corner, on a dark band: never taken for a model's output."""
    width = len("ILLUSTRATION") * 12 + 8
    fill(canvas, W - width - 6, H - 24, width, 20, BLACK)
    text(canvas, W - width - 2, H - 21, "ILLUSTRATION")


def arrow(canvas: list[list[Color]], x: int, y: int) -> None:
    fill(canvas, x - 10, y - 3, 14, 6, WHITE)
    for k in range(9):
        fill(canvas, x + 4 + k, y - 9 + k, 1, 2 * (9 - k), WHITE)


def film(canvas: list[list[Color]], y0: int, h: int, frames: list[Painter]) -> None:
    """A strip of film: sprocket holes above and below, the frames side by side."""
    fill(canvas, 0, y0, W, h, BLACK)
    for x in range(6, W, 20):
        fill(canvas, x, y0 + 4, 10, 6, GREY)
        fill(canvas, x, y0 + h - 10, 10, 6, GREY)
    gap = 8
    each = (W - gap * (len(frames) + 1)) // len(frames)
    for n, paint in enumerate(frames):
        panel(canvas, gap + n * (each + gap), y0 + 14, each, h - 28, paint)


def pixelated(paint: Painter, blocks: int) -> Painter:
    return lambda x, y: paint((math.floor(x * blocks) + 0.5) / blocks, (math.floor(y * blocks * 0.6) + 0.5)
                              / (blocks * 0.6))


def posterized(paint: Painter) -> Painter:
    def out(x: float, y: float) -> Color:
        r, g, b = paint(x, y)
        return (255 - (g // 64) * 60, (b // 64) * 70, (r // 64) * 80)

    return out


def checker(x: float, y: float) -> Color:
    return (205, 205, 205) if (int(x * 24) + int(y * 14)) % 2 else (250, 250, 250)


def cut_out(x: float, y: float) -> Color:
    inside = landscape(figure=True)(x, y)
    person = (x - 0.35) ** 2 + ((y - 0.38) * 0.56) ** 2 < 0.0028 or (abs(x - 0.35) < 0.05 + (y - 0.46) * 0.12
                                                                   and 0.46 < y < 0.95)
    return inside if person else checker(x, y)


def before_after(left: Painter, right: Painter) -> list[list[Color]]:
    canvas = [[BLACK] * W for _ in range(H)]
    panel(canvas, 8, 28, 224, 200, left)
    panel(canvas, 248, 28, 224, 200, right)
    text(canvas, 70, 8, "BEFORE")
    text(canvas, 322, 8, "AFTER")
    arrow(canvas, 240, 128)
    return canvas


def face(mouth: float) -> Painter:
    def paint(x: float, y: float) -> Color:
        d = (x - 0.5) ** 2 + ((y - 0.45) * 0.8) ** 2
        if d < 0.1:
            if ((x - 0.38) ** 2 + (y - 0.36) ** 2 < 0.002) or ((x - 0.62) ** 2 + (y - 0.36) ** 2 < 0.002):
                return BLACK
            if abs(x - 0.5) < 0.12 and abs(y - 0.62) < 0.015 + mouth * 0.06:
                return (150, 40, 50)
            return (235, 195, 165)
        return mix((90, 110, 170), (40, 50, 90), y)

    return paint


def waves(x: float, y: float) -> Color:
    level = 0.5 + 0.38 * abs(math.sin(x * 31) * math.sin(x * 7 + 1)) * (1 - abs(x - 0.5))
    bar = int(x * 60) % 2 == 0
    return (110, 200, 160) if bar and abs(y - 0.5) < (level - 0.5) else (25, 30, 45)


def notes(x: float, y: float) -> Color:
    """A staff of five lines with notes along a melody: music, not a sound's waveform."""
    staff = any(abs(y - (0.3 + 0.1 * k)) < 0.006 for k in range(5))
    for n in range(8):
        cx, cy = 0.12 + n * 0.11, 0.62 - 0.05 * ((n * 3) % 5)
        if ((x - cx) * 1.6) ** 2 + (y - cy) ** 2 < 0.0016:
            return (250, 210, 90)
        if abs(x - (cx + 0.022)) < 0.004 and cy - 0.2 < y < cy:
            return (250, 210, 90)
    return WHITE if staff else mix((60, 30, 90), (20, 20, 40), y)


def families() -> dict[str, list[list[Color]]]:
    scene = landscape()
    moved = [landscape(sun_x=0.15 + 0.25 * k, sun_y=0.45 - 0.08 * k) for k in range(4)]
    out: dict[str, list[list[Color]]] = {}
    out["text_to_image"] = render(scene)
    out["image_edit"] = before_after(scene, landscape(sun_x=0.3, sun_y=0.2, figure=True))
    canvas = [[BLACK] * W for _ in range(H)]
    film(canvas, 60, 150, moved)
    out["text_to_video"] = canvas
    canvas = [[BLACK] * W for _ in range(H)]
    panel(canvas, 8, 60, 120, 150, scene)
    arrow(canvas, 142, 135)
    fill(canvas, 156, 0, W - 156, H, BLACK)
    for n, paint in enumerate(moved[1:]):
        panel(canvas, 162 + n * 104, 60, 96, 150, paint)
    out["image_to_video"] = canvas
    canvas = [[BLACK] * W for _ in range(H)]
    film(canvas, 4, 126, moved)
    film(canvas, 136, 126, [posterized(p) for p in moved])
    out["video_to_video"] = canvas
    canvas = [[BLACK] * W for _ in range(H)]
    for n, opening in enumerate((0.1, 0.9, 0.4, 1.0)):
        panel(canvas, 8 + n * 118, 40, 110, 180, face(opening))
    out["avatar"] = canvas
    out["audio"] = render(waves)
    out["music"] = render(notes)
    out["image_upscale"] = before_after(pixelated(scene, 14), scene)
    canvas = [[BLACK] * W for _ in range(H)]
    film(canvas, 4, 126, [pixelated(p, 10) for p in moved])
    film(canvas, 136, 126, moved)
    out["video_upscale"] = canvas
    out["background_removal"] = before_after(landscape(figure=True), cut_out)
    for canvas in out.values():
        label(canvas)
    return out


def png(canvas: list[list[Color]]) -> bytes:
    raw = b"".join(b"\x00" + bytes(v for pixel in row for v in pixel) for row in canvas)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main() -> None:
    for family, canvas in families().items():
        (HERE / f"{family}.png").write_bytes(png(canvas))


if __name__ == "__main__":
    main()
