def test_dashboard_requires_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_admin_sees_dashboard_after_sign_in(admin):
    response = admin.get("/")
    assert response.status_code == 200
    assert "Dashboard" in response.get_data(as_text=True)
