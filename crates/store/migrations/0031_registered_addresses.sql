-- Issue 18 item 1: the registered address (注册地址/住所) of an OPC and of a district
-- enterprise, as given, and its matching key (normalised: half-width, letters and digits only,
-- without the leading 北京市). Two parties with one key are related. A community's company is
-- not compared: its OPCs are registered at its workstations, which is what the measures ask.
ALTER TABLE opcs ADD COLUMN registered_address TEXT;
ALTER TABLE opcs ADD COLUMN address_key TEXT;
ALTER TABLE enterprises ADD COLUMN registered_address TEXT;
ALTER TABLE enterprises ADD COLUMN address_key TEXT;
CREATE INDEX opcs_address_key ON opcs(address_key);
CREATE INDEX enterprises_address_key ON enterprises(address_key);
