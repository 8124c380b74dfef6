-- Compute and data (M2.2, issue 4 items 2 and 6): price items of a community operator's
-- versioned price tables (per GPU-hour, per GB or per whole dataset; list and OPC price in
-- fen, effective dates like model prices), the datasets operators publish (files stored by
-- SHA-256 under the data directory), every download through the platform and, for datasets
-- priced per dataset, how many bytes of each dataset version an OPC has already paid for.
-- Portable SQL (SQLite + PostgreSQL).

CREATE TABLE gateway_item_prices (
    operator_user_id TEXT NOT NULL REFERENCES users(id),
    version TEXT NOT NULL,
    effective_from BIGINT NOT NULL,
    item TEXT NOT NULL,
    -- 'gpu_hour' (compute), 'gb' or 'dataset' (data)
    unit TEXT NOT NULL,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    list_fen BIGINT NOT NULL,
    opc_fen BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (operator_user_id, version, item)
);
CREATE INDEX gateway_item_prices_item ON gateway_item_prices(operator_user_id, item, effective_from);

CREATE TABLE datasets (
    id TEXT PRIMARY KEY,
    operator_user_id TEXT NOT NULL REFERENCES users(id),
    item TEXT NOT NULL,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    description TEXT NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    -- 1 for the first file; a new file is a new version
    version BIGINT NOT NULL,
    -- 'draft' (no file yet), 'published', 'withdrawn'
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX datasets_operator ON datasets(operator_user_id);

CREATE TABLE dataset_downloads (
    id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL REFERENCES datasets(id),
    dataset_version BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    api_key_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    range_start BIGINT NOT NULL,
    range_len BIGINT NOT NULL,
    bytes_sent BIGINT NOT NULL,
    -- 'complete' or 'interrupted'
    outcome TEXT NOT NULL,
    list_fen BIGINT NOT NULL,
    charged_fen BIGINT NOT NULL,
    price_version TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX dataset_downloads_dataset ON dataset_downloads(dataset_id, created_at);

CREATE TABLE dataset_billing (
    dataset_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    subject TEXT NOT NULL,
    billed_bytes BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, sha256, subject)
);
