import factory

from accounts.models import User

PASSWORD = "a-Long-and-unusual-pass-7"


class UserFactory(factory.django.DjangoModelFactory):
    """An identity; the database trigger gives it a profile and the sign-up bonus."""

    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    raw_user_meta_data = factory.Dict({"full_name": factory.Faker("name")})
    password = factory.django.Password(PASSWORD)
