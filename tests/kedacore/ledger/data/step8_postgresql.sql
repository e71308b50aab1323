-- The ledger's schema at Step 8, the baseline.
-- What the ledger made on postgresql at commit 10fb06a: create_all of kedacore/ledger/schema.py and the audit log's triggers.
-- Frozen (a release's schema does not change); read by tests/kedacore/ledger/test_migrations.py.

CREATE TABLE approvals (
	id SERIAL NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	ref VARCHAR(64) NOT NULL, 
	summary TEXT NOT NULL, 
	requested_by VARCHAR(254) NOT NULL, 
	requested_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	estimate_micros BIGINT NOT NULL, 
	threshold_micros BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	state VARCHAR(10) NOT NULL, 
	decided_by VARCHAR(254), 
	decided_at TIMESTAMP WITHOUT TIME ZONE, 
	reason TEXT, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_approvals_ref ON approvals (kind, ref);

CREATE INDEX ix_approvals_state ON approvals (state, requested_at);

CREATE TABLE audit_log (
	id SERIAL NOT NULL, 
	at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	actor VARCHAR(254) NOT NULL, 
	action VARCHAR(40) NOT NULL, 
	outcome VARCHAR(10) NOT NULL, 
	target VARCHAR(200) NOT NULL, 
	before TEXT, 
	after TEXT, 
	detail TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_audit_log_action ON audit_log (action, at);

CREATE INDEX ix_audit_log_actor ON audit_log (actor, at);

CREATE INDEX ix_audit_log_at ON audit_log (at);

CREATE TABLE balance_readings (
	id SERIAL NOT NULL, 
	read_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	balance_micros BIGINT NOT NULL, 
	frozen_micros BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_balance_readings_read_at ON balance_readings (read_at);

CREATE TABLE campaigns (
	id SERIAL NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	template TEXT NOT NULL, 
	sender VARCHAR(32), 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	created_by VARCHAR(254), 
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
	changed_by VARCHAR(254) NOT NULL, 
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

CREATE TABLE members (
	email VARCHAR(254) NOT NULL, 
	roles VARCHAR(100) NOT NULL, 
	added_by VARCHAR(254) NOT NULL, 
	added_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	signed_out_at TIMESTAMP WITHOUT TIME ZONE, 
	last_sign_in_at TIMESTAMP WITHOUT TIME ZONE, 
	last_sign_in_iat BIGINT, 
	removed_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (email)
);

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

CREATE TABLE notifications (
	id SERIAL NOT NULL, 
	cause VARCHAR(80) NOT NULL, 
	day DATE NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	subject VARCHAR(300) NOT NULL, 
	body TEXT NOT NULL, 
	link TEXT NOT NULL, 
	facts TEXT NOT NULL, 
	deliveries TEXT NOT NULL, 
	state VARCHAR(10) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at TIMESTAMP WITHOUT TIME ZONE, 
	leased_until TIMESTAMP WITHOUT TIME ZONE, 
	last_attempt_at TIMESTAMP WITHOUT TIME ZONE, 
	note VARCHAR(200) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_notifications_cause_day UNIQUE (cause, day)
);

CREATE INDEX ix_notifications_created ON notifications (created_at);

CREATE INDEX ix_notifications_state ON notifications (state, next_attempt_at);

CREATE TABLE sends (
	id SERIAL NOT NULL, 
	client_ref VARCHAR(64) NOT NULL, 
	state VARCHAR(10) NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	created_by VARCHAR(254), 
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

CREATE TABLE team_settings (
	key VARCHAR(40) NOT NULL, 
	value TEXT NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_by VARCHAR(254) NOT NULL, 
	PRIMARY KEY (key)
);

CREATE TABLE topups (
	id SERIAL NOT NULL, 
	at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	day DATE NOT NULL, 
	amount_micros BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	account VARCHAR(254) NOT NULL, 
	by VARCHAR(254) NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_topups_day ON topups (day);

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

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
