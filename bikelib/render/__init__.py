"""Procedurally rendered photos of bicycles: the app's built-in demo data.

This package owns the five demo bicycles (`DEMO_BIKES`), the renderer that draws
photo-like pictures of them with Pillow and numpy alone, and the command that writes
`data/demo-bikes/` (and its contact sheet) again, byte for byte:

    python -m bikelib.render data/demo-bikes
    python -m bikelib.render --contact-sheet docs/demo-contact-sheet.png data/demo-bikes

Real photos cannot ship with the project, so each bicycle is a frozen set of traits
(`BikeIdentity`) and each photo a seeded draw of how people photograph a parked bike:
the whole bike from either side at some distance and angle, a part up close, a crop;
on asphalt, gravel, grass, paving or snow; before a wall, a hedge, a fence or a rack
of other bikes; in sun or overcast; then blur, sensor noise and JPEG. The bike is a
small 3-D model (millimetres, x forward, y up, z towards the drive side) seen through
a pinhole camera, drawn at twice the output size and averaged down for anti-aliasing.

Everything is deterministic: a photo depends only on its bike, seed and size (and on
the Pillow/libjpeg version, which encodes the JPEG). Imports stdlib, numpy and PIL only.

One job per module, in the order a photo is made:

    bikes        BikeIdentity, DEMO_BIKES, random_bike, trait names and common colours
    geometry     frame geometry per style; the 3-D shapes a bike is sketched with
    parts        the whole bike's sketch: wheels, frame, fork, decals, drivetrain
    accessories  saddle, handlebar, rack, child seat, basket, lights, lock
    camera       pose, pinhole camera, painting shapes far to near
    shots        how a person frames the bike: whole, partial, close-up
    textures     value noise; ground, backdrop and sky textures
    scene        the place: usual spots, random scenes, the background picture
    photo        render_photo, render_scene, shot_kind, close_up_part: shadows,
                 compositing, camera effects
    dataset      plan_dataset, render_dataset, save_jpeg, contact_sheet
    cli          `python -m bikelib.render` (run by __main__)
"""

from .bikes import (
    BASKETS,
    BLACK,
    BROWN_LEATHER,
    CHROME,
    CREAM_WALL,
    DEMO_BIKES,
    FRAME_STYLES,
    HANDLEBARS,
    LOCKS,
    RGB,
    SADDLE_SHAPES,
    SILVER,
    TAN_WALL,
    TYRE_BLACK,
    BikeIdentity,
    random_bike,
)
from .cli import main
from .dataset import (
    DEFAULT_DATASET_SEED,
    JPEG_QUALITY,
    PlannedPhoto,
    contact_sheet,
    plan_dataset,
    render_dataset,
    save_jpeg,
)
from .photo import (
    PHOTO_SIZE,
    PLACES,
    SUPERSAMPLE,
    close_up_part,
    render_photo,
    render_scene,
    shot_kind,
)
from .scene import BACKDROPS, GROUNDS
from .shots import CLOSE_UP_PARTS, SHOT_KINDS

__all__ = [
    "BACKDROPS",
    "BASKETS",
    "BLACK",
    "BROWN_LEATHER",
    "CHROME",
    "CLOSE_UP_PARTS",
    "CREAM_WALL",
    "DEFAULT_DATASET_SEED",
    "DEMO_BIKES",
    "FRAME_STYLES",
    "GROUNDS",
    "HANDLEBARS",
    "JPEG_QUALITY",
    "LOCKS",
    "PHOTO_SIZE",
    "PLACES",
    "RGB",
    "SADDLE_SHAPES",
    "SHOT_KINDS",
    "SILVER",
    "SUPERSAMPLE",
    "TAN_WALL",
    "TYRE_BLACK",
    "BikeIdentity",
    "PlannedPhoto",
    "close_up_part",
    "contact_sheet",
    "main",
    "plan_dataset",
    "random_bike",
    "render_dataset",
    "render_photo",
    "render_scene",
    "save_jpeg",
    "shot_kind",
]
