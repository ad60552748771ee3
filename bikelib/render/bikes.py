"""The bicycles: `BikeIdentity` (the traits that make one bike recognisable), the
five `DEMO_BIKES`, and `random_bike` for bikes that are none of them.

Also the trait vocabularies (frame styles, handlebars, saddles, baskets, locks) and the
common colours the other modules paint with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

RGB = tuple[int, int, int]

DEFAULT_DATASET_SEED = 2018
JPEG_QUALITY = 82  # fixed, so the committed set can be rendered again byte for byte
PHOTO_SIZE = (640, 480)
SUPERSAMPLE = 2  # the bike is drawn at 2x and averaged down: smooth edges, thin spokes

FRAME_STYLES = ("diamond", "step-through", "mountain", "road")
HANDLEBARS = ("flat", "riser", "swept-back", "drop")
SADDLE_SHAPES = ("racing", "comfort", "sprung-leather")
BASKETS = ("none", "wire", "wicker", "crate")
LOCKS = ("none", "ring", "cable")

BLACK: RGB = (24, 24, 26)
TYRE_BLACK: RGB = (36, 36, 38)
SILVER: RGB = (176, 178, 182)
CHROME: RGB = (198, 200, 204)
BROWN_LEATHER: RGB = (118, 70, 36)
TAN_WALL: RGB = (176, 134, 84)
CREAM_WALL: RGB = (224, 212, 176)


@dataclass(frozen=True)
class BikeIdentity:
    """The traits that make one bicycle recognisable; colours are sRGB triples.

    `rim_diameter_mm` is the ISO bead seat diameter: 622 is 700c/28", 635 the old
    Dutch 28", 584 is 27.5", 559 is 26". Accessories left as None/"none"/False are absent.
    """

    name: str
    frame_style: str
    frame_color: RGB
    fork_color: RGB
    decal_color: RGB | None = None  # brand lettering along the down tube
    rim_diameter_mm: int = 622
    tyre_width_mm: int = 37
    tyre_sidewall: RGB = TYRE_BLACK  # tan or cream walls on city tyres
    knobby_tyres: bool = False
    rim_color: RGB = SILVER
    spoke_count: int = 36
    spoke_reflectors: bool = False
    saddle_shape: str = "comfort"
    saddle_color: RGB = BLACK
    handlebar: str = "flat"
    grip_color: RGB = BLACK
    basket: str = "none"
    basket_color: RGB = BLACK
    rear_rack: RGB | None = None
    fenders: RGB | None = None
    chain_guard: RGB | None = None
    child_seat: RGB | None = None
    bell: bool = False
    lights: bool = False
    sticker: RGB | None = None  # a label on the seat tube
    lock: str = "none"
    lock_color: RGB = BLACK
    kickstand: bool = True

    def __post_init__(self) -> None:
        for name, allowed in (
            ("frame_style", FRAME_STYLES),
            ("handlebar", HANDLEBARS),
            ("saddle_shape", SADDLE_SHAPES),
            ("basket", BASKETS),
            ("lock", LOCKS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        if self.spoke_count < 12 or self.spoke_count % 4:
            raise ValueError("spoke_count must be a multiple of 4, at least 12")

    def traits(self) -> dict[str, object]:
        """Every trait except the name: two bikes with equal traits look the same."""
        return {k: v for k, v in asdict(self).items() if k != "name"}

    def describe(self) -> str:
        """One line of the traits that are set, for READMEs and captions."""
        parts = []
        unused = {"basket_color": self.basket == "none", "lock_color": self.lock == "none"}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "name" or value in (None, False, "none") or unused.get(f.name):
                continue
            parts.append(f"{f.name.replace('_', ' ')}: {_color_text(value)}")
        return "; ".join(parts)


def _color_text(value: object) -> str:
    if isinstance(value, tuple) and len(value) == 3:
        return "#{:02x}{:02x}{:02x}".format(*value)
    return "yes" if value is True else str(value)


# Two pairs share a frame colour on purpose (black, red), so colour alone does not tell
# them apart: the frame shape, saddle, tyres and accessories must.
DEMO_BIKES: tuple[BikeIdentity, ...] = (
    BikeIdentity(
        name="black-mountain",
        frame_style="mountain",
        frame_color=(30, 31, 33),
        fork_color=(30, 30, 32),
        decal_color=(62, 196, 96),
        rim_diameter_mm=584,
        tyre_width_mm=56,
        knobby_tyres=True,
        rim_color=(34, 34, 36),
        spoke_count=32,
        spoke_reflectors=True,
        saddle_shape="racing",
        handlebar="riser",
        kickstand=False,
    ),
    BikeIdentity(
        name="black-step-through",
        frame_style="step-through",
        frame_color=(20, 20, 24),
        fork_color=(20, 20, 24),
        decal_color=(204, 164, 72),  # gold lettering, as on many Dutch bikes
        tyre_width_mm=40,
        saddle_shape="comfort",
        handlebar="swept-back",
        basket="wire",
        basket_color=(26, 26, 28),
        rear_rack=(26, 26, 28),
        fenders=(26, 26, 28),
        chain_guard=(26, 26, 28),
        bell=True,
        lights=True,
        lock="ring",
    ),
    BikeIdentity(
        name="red-road",
        frame_style="road",
        frame_color=(184, 26, 34),
        fork_color=(30, 30, 32),
        decal_color=(238, 238, 236),
        tyre_width_mm=25,
        rim_color=(38, 38, 40),
        spoke_count=28,
        saddle_shape="racing",
        saddle_color=(232, 232, 228),
        handlebar="drop",
        grip_color=(232, 232, 228),
        kickstand=False,
    ),
    BikeIdentity(
        name="red-step-through",
        frame_style="step-through",
        frame_color=(196, 34, 44),
        fork_color=(196, 34, 44),
        rim_diameter_mm=635,
        tyre_width_mm=40,
        tyre_sidewall=TAN_WALL,
        saddle_shape="sprung-leather",
        saddle_color=BROWN_LEATHER,
        handlebar="swept-back",
        grip_color=BROWN_LEATHER,
        rear_rack=CHROME,
        fenders=CHROME,
        chain_guard=(196, 34, 44),
        child_seat=(36, 92, 176),
        bell=True,
        lights=True,
        lock="cable",
        lock_color=(232, 196, 36),
    ),
    BikeIdentity(
        name="white-city",
        frame_style="diamond",
        frame_color=(232, 230, 222),
        fork_color=(232, 230, 222),
        decal_color=(70, 70, 74),
        tyre_width_mm=37,
        tyre_sidewall=CREAM_WALL,
        saddle_shape="comfort",
        saddle_color=BROWN_LEATHER,
        handlebar="swept-back",
        grip_color=BROWN_LEATHER,
        basket="wicker",
        basket_color=(156, 112, 60),
        rear_rack=(28, 28, 30),
        fenders=(28, 28, 30),
        sticker=(246, 200, 30),
        lights=True,
        lock="ring",
    ),
)

# Colours that random bikes (and background bikes) are painted with: common frame
# colours, demo colours included, so a stranger's bike can look like one of ours.
_FRAME_PALETTE: tuple[RGB, ...] = (
    (24, 24, 26),
    (232, 230, 222),
    (186, 28, 36),
    (30, 60, 140),
    (60, 120, 200),
    (24, 110, 70),
    (120, 160, 60),
    (230, 120, 30),
    (240, 200, 40),
    (226, 130, 170),
    (110, 40, 110),
    (140, 144, 150),
    (80, 56, 40),
    (20, 150, 160),
)


def random_bike(seed: int) -> BikeIdentity:
    """A plausible bicycle that is none of `DEMO_BIKES`: for "not one of my bikes" tests.

    The same seed gives the same bike. Its name is `random-<seed>`.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB1C7]))
    while True:
        bike = _draw_random_bike(rng, f"random-{seed}")
        if all(bike.traits() != demo.traits() for demo in DEMO_BIKES):
            return bike


def _draw_random_bike(rng: np.random.Generator, name: str) -> BikeIdentity:
    def pick(options: Sequence):
        return options[int(rng.integers(len(options)))]

    def maybe(p: float, value):
        return value if rng.random() < p else None

    style = pick(FRAME_STYLES)
    frame = pick(_FRAME_PALETTE)
    city = style in ("diamond", "step-through")
    handlebar = {"road": "drop", "mountain": pick(("flat", "riser"))}.get(
        style, pick(("swept-back", "flat"))
    )
    accessory = pick((BLACK, SILVER, frame))
    return BikeIdentity(
        name=name,
        frame_style=style,
        frame_color=frame,
        fork_color=pick((frame, frame, BLACK, SILVER)),
        decal_color=maybe(0.5, pick(_FRAME_PALETTE)),
        rim_diameter_mm=pick((622, 584, 559)) if style == "mountain" else pick((622, 622, 635)),
        tyre_width_mm=int(
            {"road": rng.integers(23, 33), "mountain": rng.integers(45, 62)}.get(
                style, rng.integers(32, 48)
            )
        ),
        tyre_sidewall=pick((TYRE_BLACK, TYRE_BLACK, TAN_WALL, CREAM_WALL)) if city else TYRE_BLACK,
        knobby_tyres=style == "mountain" and rng.random() < 0.8,
        rim_color=pick((SILVER, BLACK)),
        spoke_count=pick((28, 32, 36)),
        spoke_reflectors=rng.random() < 0.3,
        saddle_shape="racing" if not city else pick(SADDLE_SHAPES),
        saddle_color=pick((BLACK, BLACK, BROWN_LEATHER, (232, 232, 228))),
        handlebar=handlebar,
        grip_color=pick((BLACK, BLACK, BROWN_LEATHER)),
        basket=pick(BASKETS) if city and rng.random() < 0.4 else "none",
        basket_color=pick((BLACK, SILVER, (156, 112, 60))),
        rear_rack=maybe(0.6 if city else 0.1, accessory),
        fenders=maybe(0.7 if city else 0.15, accessory),
        chain_guard=maybe(0.6 if city else 0.0, accessory),
        child_seat=maybe(0.1 if city else 0.0, pick(_FRAME_PALETTE)),
        bell=rng.random() < 0.5,
        lights=rng.random() < 0.5,
        sticker=maybe(0.2, pick(_FRAME_PALETTE)),
        lock=pick(LOCKS),
        lock_color=pick((BLACK, (232, 196, 36), (200, 40, 40))),
        kickstand=city or rng.random() < 0.3,
    )
