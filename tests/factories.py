import io

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from PIL import Image

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs) -> None:
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))
        self.save()


def image_bytes(*, fmt: str = "JPEG", size: tuple[int, int] = (96, 64), seed: int = 0) -> bytes:
    """A small, valid image whose pixels depend on the seed, so different seeds give different bytes."""
    img = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    for x in range(0, size[0], 8):
        for y in range(0, size[1], 8):
            img.putpixel((x, y), ((x * 7 + seed) % 256, (y * 5) % 256, (x + y) % 256))
    buffer = io.BytesIO()
    img.save(buffer, format=fmt)
    return buffer.getvalue()
