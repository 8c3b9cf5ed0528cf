"""The database fixtures hand out real, isolated databases."""

from sqlalchemy import create_engine, text


def test_each_test_gets_an_empty_database_of_its_kind(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, note TEXT)"))
        connection.execute(text("INSERT INTO probe VALUES (1, 'written')"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT note FROM probe")).scalar_one() == "written"
        if engine.dialect.name == "postgresql":
            version = connection.execute(text("SHOW server_version")).scalar_one()
            assert int(version.split(".")[0]) >= 13
    engine.dispose()
