"""The loss curve of a training run drawn as a picture, laid out as ComfyUI's ``LossGraphNode``
draws it: an 800×480 plot area with a 40-pixel margin on the left and below, the curve in blue
(scaled so the lowest loss touches the x-axis and the highest the top), black axes, the labels
"Loss" and "Steps" and the extreme values at the top and bottom of the y-axis."""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

PLOT_WIDTH, PLOT_HEIGHT, MARGIN = 800, 480, 40
CURVE_COLOUR, AXIS_COLOUR = "blue", "black"


def curve_points(losses: Sequence[float]) -> list[tuple[int, int]]:
    """Pixel positions of the losses: x over the step index (step i of n at ``i / n`` of the
    width), y from the bottom of the plot (min) to its top (max); a flat curve lies on the axis."""
    low, high = min(losses), max(losses)
    span = high - low
    count = len(losses)
    points = []
    for index, value in enumerate(losses):
        scaled = (value - low) / span if span > 0 else 0.0
        x = MARGIN if index == 0 else MARGIN + int(index / count * PLOT_WIDTH)
        points.append((x, PLOT_HEIGHT - int(scaled * PLOT_HEIGHT)))
    return points


def draw_loss_graph(losses: Sequence[float]) -> Image.Image:
    """An RGB image of the curve (``PLOT_WIDTH + MARGIN`` × ``PLOT_HEIGHT + MARGIN``)."""
    if not losses:
        raise ValueError("the loss map holds no losses to plot")
    image = Image.new("RGB", (PLOT_WIDTH + MARGIN, PLOT_HEIGHT + MARGIN), "white")
    draw = ImageDraw.Draw(image)
    points = curve_points(losses)
    for start, end in zip(points, points[1:]):
        draw.line([start, end], fill=CURVE_COLOUR, width=2)
    draw.line([(MARGIN, 0), (MARGIN, PLOT_HEIGHT)], fill=AXIS_COLOUR, width=2)
    draw.line([(MARGIN, PLOT_HEIGHT), (PLOT_WIDTH + MARGIN, PLOT_HEIGHT)], fill=AXIS_COLOUR, width=2)
    font = ImageFont.load_default()
    draw.text((5, PLOT_HEIGHT // 2), "Loss", font=font, fill=AXIS_COLOUR)
    draw.text((PLOT_WIDTH // 2, PLOT_HEIGHT + 10), "Steps", font=font, fill=AXIS_COLOUR)
    draw.text((MARGIN - 30, 0), f"{max(losses):.2f}", font=font, fill=AXIS_COLOUR)
    draw.text((MARGIN - 30, PLOT_HEIGHT - 10), f"{min(losses):.2f}", font=font, fill=AXIS_COLOUR)
    return image
