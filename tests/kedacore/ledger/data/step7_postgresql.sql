-- The ledger's schema at Step 7: no team tables, who-columns of 120 characters.
-- What the ledger made on postgresql at commit e51af6f: create_all of kedacore/ledger/schema.py.
-- Frozen (a release's schema does not change); read by tests/kedacore/ledger/test_migrations.py.

CREATE TABLE campaigns (
	id SERIAL NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	template TEXT NOT NULL, 
	sender VARCHAR(32), 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	created_by VARCHAR(120), 
	status VARCHAR(16) NOT NULL, 
	recipients INTEGER NOT NULL, 
	batches INTEGER NOT NULL, 
	estimated_micros BIGINT NOT NULL, 
	debited_micros BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	error TEXT, 
	demo BOOLEAN NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE cap_changes (
	id SERIAL NOT NULL, 
	change_id VARCHAR(32) NOT NULL, 
	changed_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	changed_by VARCHAR(120) NOT NULL, 
	field VARCHAR(32) NOT NULL, 
	before TEXT, 
	after TEXT, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_cap_changes_changed_at ON cap_changes (changed_at);

CREATE TABLE events (
	id SERIAL NOT NULL, 
	event_id VARCHAR(160) NOT NULL, 
	msgid VARCHAR(64) NOT NULL, 
	status VARCHAR(12) NOT NULL, 
	payload TEXT NOT NULL, 
	occurred_at TIMESTAMP WITHOUT TIME ZONE, 
	received_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	outcome VARCHAR(10) NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (event_id)
);

CREATE INDEX ix_events_msgid ON events (msgid, id);

CREATE INDEX ix_events_outcome ON events (outcome);

CREATE TABLE message_rollup (
	day DATE NOT NULL, 
	country VARCHAR(2) NOT NULL, 
	sender VARCHAR(32) NOT NULL, 
	campaign_id INTEGER NOT NULL, 
	status VARCHAR(12) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	demo BOOLEAN NOT NULL, 
	messages BIGINT NOT NULL, 
	segments BIGINT NOT NULL, 
	cost_micros BIGINT NOT NULL, 
	pending_micros BIGINT NOT NULL, 
	priced BIGINT NOT NULL, 
	clicks BIGINT NOT NULL, 
	clicked BIGINT NOT NULL, 
	latency_ms BIGINT NOT NULL, 
	lat_00 BIGINT NOT NULL, 
	lat_01 BIGINT NOT NULL, 
	lat_02 BIGINT NOT NULL, 
	lat_03 BIGINT NOT NULL, 
	lat_04 BIGINT NOT NULL, 
	lat_05 BIGINT NOT NULL, 
	lat_06 BIGINT NOT NULL, 
	lat_07 BIGINT NOT NULL, 
	lat_08 BIGINT NOT NULL, 
	lat_09 BIGINT NOT NULL, 
	lat_10 BIGINT NOT NULL, 
	lat_11 BIGINT NOT NULL, 
	lat_12 BIGINT NOT NULL, 
	lat_13 BIGINT NOT NULL, 
	lat_14 BIGINT NOT NULL, 
	lat_15 BIGINT NOT NULL, 
	lat_16 BIGINT NOT NULL, 
	lat_17 BIGINT NOT NULL, 
	lat_18 BIGINT NOT NULL, 
	lat_19 BIGINT NOT NULL, 
	lat_20 BIGINT NOT NULL, 
	lat_21 BIGINT NOT NULL, 
	lat_22 BIGINT NOT NULL, 
	lat_23 BIGINT NOT NULL, 
	lat_24 BIGINT NOT NULL, 
	lat_25 BIGINT NOT NULL, 
	lat_26 BIGINT NOT NULL, 
	lat_27 BIGINT NOT NULL, 
	lat_28 BIGINT NOT NULL, 
	revision BIGINT NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (day, country, sender, campaign_id, status, currency, demo)
);

CREATE TABLE sends (
	id SERIAL NOT NULL, 
	client_ref VARCHAR(64) NOT NULL, 
	state VARCHAR(10) NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	created_by VARCHAR(120), 
	session VARCHAR(32), 
	country VARCHAR(2) NOT NULL, 
	sender VARCHAR(32), 
	content TEXT NOT NULL, 
	recipients TEXT NOT NULL, 
	recipient_count INTEGER NOT NULL, 
	track_click BOOLEAN NOT NULL, 
	estimated_micros BIGINT, 
	currency VARCHAR(3) NOT NULL, 
	task_id VARCHAR(40), 
	debited_micros BIGINT, 
	error_code VARCHAR(8), 
	error TEXT, 
	attempts INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (client_ref)
);

CREATE INDEX ix_sends_created ON sends (created_at);

CREATE TABLE status_lookups (
	id SERIAL NOT NULL, 
	msgid VARCHAR(64) NOT NULL, 
	status VARCHAR(12) NOT NULL, 
	looked_up_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	result TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_status_lookups_msgid ON status_lookups (msgid, looked_up_at);

CREATE TABLE campaign_batches (
	id SERIAL NOT NULL, 
	campaign_id INTEGER NOT NULL, 
	seq INTEGER NOT NULL, 
	country VARCHAR(2) NOT NULL, 
	sender VARCHAR(32), 
	content TEXT NOT NULL, 
	recipients TEXT NOT NULL, 
	recipient_count INTEGER NOT NULL, 
	client_ref VARCHAR(64) NOT NULL, 
	state VARCHAR(10) NOT NULL, 
	task_id VARCHAR(40), 
	estimated_micros BIGINT NOT NULL, 
	debited_micros BIGINT, 
	attempts INTEGER NOT NULL, 
	error TEXT, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	attempted_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_campaign_batches_seq UNIQUE (campaign_id, seq), 
	FOREIGN KEY(campaign_id) REFERENCES campaigns (id), 
	UNIQUE (client_ref)
);

CREATE INDEX ix_campaign_batches_state ON campaign_batches (campaign_id, state);

CREATE TABLE tasks (
	task_id VARCHAR(40) NOT NULL, 
	campaign_id INTEGER, 
	country VARCHAR(2) NOT NULL, 
	sender VARCHAR(32), 
	content TEXT NOT NULL, 
	recipients INTEGER NOT NULL, 
	segments INTEGER NOT NULL, 
	debited_micros BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	client_ref VARCHAR(64), 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	day DATE NOT NULL, 
	demo BOOLEAN NOT NULL, 
	PRIMARY KEY (task_id), 
	FOREIGN KEY(campaign_id) REFERENCES campaigns (id)
);

CREATE INDEX ix_tasks_campaign ON tasks (campaign_id);

CREATE INDEX ix_tasks_client_ref ON tasks (client_ref);

CREATE INDEX ix_tasks_day ON tasks (day);

CREATE TABLE messages (
	msgid VARCHAR(64) NOT NULL, 
	task_id VARCHAR(40) NOT NULL, 
	campaign_id INTEGER, 
	recipient VARCHAR(20) NOT NULL, 
	country VARCHAR(2) NOT NULL, 
	sender VARCHAR(32), 
	status VARCHAR(12) NOT NULL, 
	segments INTEGER, 
	cost_micros BIGINT, 
	estimated_micros BIGINT, 
	currency VARCHAR(3) NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	day DATE NOT NULL, 
	sent_at TIMESTAMP WITHOUT TIME ZONE, 
	delivered_at TIMESTAMP WITHOUT TIME ZONE, 
	final_at TIMESTAMP WITHOUT TIME ZONE, 
	delivery_ms BIGINT, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	clicks INTEGER NOT NULL, 
	last_click_at TIMESTAMP WITHOUT TIME ZONE, 
	source VARCHAR(16) NOT NULL, 
	demo BOOLEAN NOT NULL, 
	PRIMARY KEY (msgid), 
	FOREIGN KEY(task_id) REFERENCES tasks (task_id), 
	FOREIGN KEY(campaign_id) REFERENCES campaigns (id)
);

CREATE INDEX ix_messages_campaign ON messages (campaign_id, status);

CREATE INDEX ix_messages_day_country ON messages (day, country);

CREATE INDEX ix_messages_day_sender ON messages (day, sender);

CREATE INDEX ix_messages_day_status ON messages (day, status);

CREATE INDEX ix_messages_latency ON messages (delivery_ms, day, country, sender, campaign_id, currency);

CREATE INDEX ix_messages_recipient ON messages (recipient, created_at);

CREATE INDEX ix_messages_status ON messages (status, created_at);

CREATE INDEX ix_messages_task ON messages (task_id);
