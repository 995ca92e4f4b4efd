"""A NUL character in a query string is refused before any view, in the API's error shape."""

from django.test import Client


def test_api_answers_400_in_the_error_shape_naming_the_parameter(researcher):
    client = Client()
    client.force_login(researcher)
    response = client.get("/api/templates/", {"q": "a\x00b"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"] == [{"field": "q", "message": body["detail"]}]
    assert "'q'" in body["detail"]
    assert "NUL" in body["detail"]


def test_page_answers_400_in_plain_text(researcher):
    client = Client()
    client.force_login(researcher)
    response = client.get("/library/templates/", {"page": "1", "q": "<b>\x00"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert "'q'" in response.content.decode()


def test_a_query_without_nul_passes(researcher):
    client = Client()
    client.force_login(researcher)
    assert client.get("/library/templates/", {"q": "plane %00 literally"}).status_code == 200
