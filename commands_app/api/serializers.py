"""Input serializers: they turn a JSON body into the fields of one command, or name what is wrong."""

from rest_framework import serializers


class RegisterCustomerInput(serializers.Serializer[dict[str, str]]):
    first_name = serializers.CharField(max_length=100)
    last_name = serializers.CharField(max_length=100)
    email = serializers.EmailField(max_length=254)


class RegisterCustomerOutput(serializers.Serializer[dict[str, object]]):
    customer_id = serializers.UUIDField()
    version = serializers.IntegerField()
