-- what actionbot doctor found about each model server
CREATE TABLE model_checks (
    endpoint      TEXT NOT NULL,
    model         TEXT NOT NULL,
    native_tools  INTEGER NOT NULL CHECK (native_tools IN (0, 1)),
    checked_at    REAL NOT NULL,
    PRIMARY KEY (endpoint, model)
);
