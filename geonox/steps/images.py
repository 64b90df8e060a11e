"""pin-images and images-{arch}: the container images a project's archs run in."""

from __future__ import annotations

from collections.abc import Callable

from geonox.config import Config
from geonox.images import pin_images
from geonox.project import Project, Run
from geonox.steps.base import ProjectKey, ProjectStep, TargetKey, TargetStep


def pin(project: Project, log: Callable[[str], None]) -> bool:
    """Resolve every image target's tag to its digest into geonox-images.lock; False when no
    configured target runs in an image."""
    config = project.config
    targets = project.image_targets()
    if not targets:
        log("no configured arch runs in a container image; nothing to pin")
        return False
    pin_images(config.home, targets, config.images, log=log)
    return True


class PinImagesStep(ProjectStep):
    name = "pin"
    stem = "pin-images"

    def doc(self, config: Config, key: ProjectKey) -> str:
        return "Resolve each arch's build image tag to its digest and write geonox-images.lock."

    def run(self, run: Run, key: ProjectKey) -> None:
        pin(run.project, run.out)


class ImagesStep(TargetStep):
    name = "images"

    def doc(self, config: Config, key: TargetKey) -> str:
        dockerfile = config.dockerfile.get(key.target.policy)
        source = f" from {dockerfile.name}" if dockerfile else ""
        return (
            f"Build (or find) the {key.target.platform_tag} container build image{source}, pinned."
        )

    def run(self, run: Run, key: TargetKey) -> None:
        with run.backend(key.target) as backend:
            image = backend.prepare_image()
            run.log(f"{image.run_ref} ({image.digest or 'unpinned'}) is ready")


PIN_IMAGES = PinImagesStep()
IMAGES = ImagesStep()
