"""The public price list (no authentication): at least 30 countries, the seed's prices."""

from __future__ import annotations

from decimal import Decimal

import phonenumbers
import pytest

from gateway.pricing import PriceTable


def test_pricing_needs_no_key_and_lists_at_least_30_countries(gateway):
    response = gateway.http.get(gateway.base_url + "/pricing")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["currency"] == "USD"
    countries = {c["countryCode"]: c["pricePerSegment"] for c in data["countries"]}
    assert len(countries) == len(data["countries"]) >= 30
    assert countries["CN"] == 0.048 and countries["US"] == 0.05
    assert '{"countryCode":"CN","pricePerSegment":0.048}' in response.text
    for code, price in countries.items():
        assert code in phonenumbers.SUPPORTED_REGIONS
        assert Decimal(str(price)) > 0


def test_every_priced_country_can_be_sent_to(gateway):
    account = gateway.create_account(balance="1000")
    countries = gateway.http.get(gateway.base_url + "/pricing").json()["data"]["countries"]
    for entry in countries:
        example = phonenumbers.example_number_for_type(
            entry["countryCode"], phonenumbers.PhoneNumberType.MOBILE
        )
        number = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        payload = {"countryCode": entry["countryCode"], "phoneNumbers": [number], "content": "x"}
        data = gateway.send(account, payload).json()["data"]
        assert data["debitedAmount"] == entry["pricePerSegment"], entry


def test_a_custom_price_table(gateway_factory):
    gateway = gateway_factory(prices={"fr": "0.07", "de": "0.1234"}, currency="EUR")
    data = gateway.http.get(gateway.base_url + "/pricing").json()["data"]
    assert data == {
        "currency": "EUR",
        "countries": [
            {"countryCode": "DE", "pricePerSegment": 0.1234},
            {"countryCode": "FR", "pricePerSegment": 0.07},
        ],
    }


@pytest.mark.parametrize("prices", [{"US": "0"}, {"US": "-1"}, {"US": "0.0000001"}])
def test_bad_price_tables_are_refused(prices):
    with pytest.raises(ValueError):
        PriceTable(prices)
