"""
``render_mode="rgb_array"`` for the package's envs: each draws its state as a small grid of coloured cells, scaled
up. SB3's ``make_vec_env`` asks every env for ``"rgb_array"`` unless told otherwise, and rl-zoo3's ``--video``
records those frames, so every env here supports that mode.
"""

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

CELL_PIXELS = 16
WALL = (40, 40, 40)
FLOOR = (255, 255, 255)
AGENT = (220, 40, 40)
GOAL = (0, 170, 0)


class CellsRenderedEnv(gym.Env):
    """
    A gymnasium env whose ``"rgb_array"`` frame is :meth:`render_cells` scaled up to ``CELL_PIXELS`` pixels a cell.
    A subclass calls :meth:`init_render_mode` in its constructor and defines :meth:`render_cells`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}

    def init_render_mode(self, render_mode: str | None) -> None:
        """
        :param render_mode: ``None`` (no frames) or ``"rgb_array"``; anything else raises a ``ValueError``.
        """
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}: must be None or one of {self.metadata['render_modes']}")
        self.render_mode = render_mode

    def render(self) -> np.ndarray | None:
        """:return: the current frame, (rows * 16, columns * 16, 3) uint8, or ``None`` without ``"rgb_array"``."""
        if self.render_mode != "rgb_array":
            return None
        cells = np.asarray(self.render_cells(), dtype=np.uint8)
        return cells.repeat(CELL_PIXELS, axis=0).repeat(CELL_PIXELS, axis=1)

    def render_cells(self) -> np.ndarray:
        """:return: (rows, columns, 3) RGB values in 0..255, one per cell of the picture."""
        raise NotImplementedError


def grey_cells(values: np.ndarray) -> np.ndarray:
    """
    :param values: a row of values in [0, 1].
    :return: (1, len(values), 3) the values as shades of grey (1 is white).
    """
    shades = np.round(255 * np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)).astype(np.uint8)
    return np.repeat(shades[None, :, None], 3, axis=2)
