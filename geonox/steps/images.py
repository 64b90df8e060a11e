"""pin-images and images-{arch}: the container images a project's archs run in."""

from __future__ import annotations

from collections.abc import Callable

from geonox.config import Config
from geonox.images import pin_images
from geonox.project import Project
from geonox.steps.base import Step
from geonox.targets import PythonVersion


def pin(project: Project, log: Callable[[str], None]) -> bool:
    """Resolve every image arch's tag to its digest into geonox-images.lock; False when no
    configured arch runs in an image."""
    config = project.config
    archs = project.image_archs()
    if not archs:
        log("no configured arch runs in a container image; nothing to pin")
        return False
    pin_images(config.home, config.policy, archs, config.images, log=log)
    return True


class PinImagesStep(Step):
    name = "pin"
    stem = "pin-images"
    scope = "project"

    def doc(self, config: Config, arch: str | None, py: PythonVersion | None) -> str:
        return "Resolve each arch's build image tag to its digest and write geonox-images.lock."

    def run(
        self, project: Project, arch: str | None, py: PythonVersion | None, session: str
    ) -> None:
        pin(project, project.log)


class ImagesStep(Step):
    name = "images"
    scope = "arch"

    def doc(self, config: Config, arch: str | None, py: PythonVersion | None) -> str:
        source = f" from {config.dockerfile.name}" if config.dockerfile else ""
        return f"Build (or find) the {arch} container build image{source}, pinned."

    def run(
        self, project: Project, arch: str | None, py: PythonVersion | None, session: str
    ) -> None:
        assert arch is not None
        with project.backend(arch) as backend:
            image = backend.prepare_image()
            project.log(f"{session}: {image.run_ref} ({image.digest or 'unpinned'}) is ready")


PIN_IMAGES = PinImagesStep()
IMAGES = ImagesStep()
