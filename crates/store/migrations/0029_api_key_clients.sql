-- Issue 18 item 1 (usage ties): a bounded sample of the clients behind each API key, as a keyed
-- fingerprint of the client network (IPv4 address, IPv6 /64) and user agent; never the address
-- itself. Two parties whose keys share a client are tied for the integrity scan.
CREATE TABLE api_key_clients (
    api_key_id TEXT NOT NULL REFERENCES api_keys(id),
    fingerprint TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (api_key_id, fingerprint)
);
