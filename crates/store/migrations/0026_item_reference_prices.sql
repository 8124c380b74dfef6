-- Reference prices for compute and data items (issue 18 item 3, M2.2): beside the models', the
-- platform operator's versioned list of public list prices per item code and unit (fen per
-- GPU-hour, per GB or per dataset). The discount basis counts an operator's item list price
-- at most up to the reference in force.
CREATE TABLE gateway_item_reference_prices (
    version TEXT NOT NULL,
    effective_from BIGINT NOT NULL,
    item TEXT NOT NULL,
    unit TEXT NOT NULL,
    list_fen BIGINT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (version, item, unit)
);
CREATE INDEX gateway_item_reference_prices_item ON gateway_item_reference_prices(item, unit, effective_from);
