//! The diesel schema, shared by both backends: only portable SQL types are used.

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        tenant_id -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        token_hash -> Text,
        user_id -> Text,
        tenant_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        prefix -> Text,
        key_hash -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        created_by_user_id -> Nullable<Text>,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        tenant_id -> Text,
        email -> Text,
        role -> Text,
        token_hash -> Text,
        invited_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        tenant_id -> Text,
        actor -> Text,
        action -> Text,
        target -> Text,
        detail -> Text,
        ip -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    login_failures (throttle_key) {
        throttle_key -> Text,
        failures -> BigInt,
        window_start -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        locks -> BigInt,
    }
}

diesel::joinable!(users -> tenants (tenant_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    users,
    sessions,
    api_keys,
    invitations,
    audit_log,
    login_failures,
    connectors,
    inboxes,
    inbox_messages,
    commands,
    command_runs,
    direct_urls,
    leases,
    maintenance_done,
);

diesel::table! {
    connectors (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        description -> Text,
        kind -> Text,
        reach -> Text,
        host -> Nullable<Text>,
        port -> Nullable<BigInt>,
        database_name -> Nullable<Text>,
        username -> Nullable<Text>,
        tls_mode -> Text,
        options -> Text,
        path -> Nullable<Text>,
        secrets_enc -> Nullable<Text>,
        gateway_key_hash -> Nullable<Text>,
        gateway_key_prefix -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(connectors -> tenants (tenant_id));

diesel::table! {
    inboxes (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        token -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    inbox_messages (id) {
        id -> Text,
        tenant_id -> Text,
        inbox_id -> Text,
        source -> Text,
        body -> Text,
        size -> BigInt,
        received_at -> Timestamp,
    }
}

diesel::table! {
    commands (id) {
        id -> Text,
        tenant_id -> Text,
        connector_id -> Text,
        name -> Text,
        kind -> Text,
        sql_text -> Text,
        callback_url -> Nullable<Text>,
        callback_inbox_id -> Nullable<Text>,
        last_field -> Nullable<Text>,
        last_value -> Nullable<Text>,
        last_value_type -> Nullable<Text>,
        schedule -> Nullable<Text>,
        timezone -> Text,
        params -> Nullable<Text>,
        batch_size -> BigInt,
        status -> Text,
        error -> Nullable<Text>,
        next_run_at -> Nullable<Timestamp>,
        window_end -> Nullable<Timestamp>,
        lease_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    command_runs (id) {
        id -> Text,
        tenant_id -> Text,
        command_id -> Text,
        run_trigger -> Text,
        status -> Text,
        window_start -> Nullable<Timestamp>,
        window_end -> Nullable<Timestamp>,
        params -> Nullable<Text>,
        rows_delivered -> BigInt,
        bytes_delivered -> BigInt,
        batches_delivered -> BigInt,
        error -> Nullable<Text>,
        last_value_before -> Nullable<Text>,
        last_value_after -> Nullable<Text>,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        lease_until -> Nullable<Timestamp>,
        attempts -> BigInt,
        next_attempt_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    direct_urls (id) {
        id -> Text,
        tenant_id -> Text,
        command_id -> Text,
        token -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(inbox_messages -> inboxes (inbox_id));
diesel::joinable!(commands -> connectors (connector_id));
diesel::joinable!(command_runs -> commands (command_id));
diesel::joinable!(direct_urls -> commands (command_id));

diesel::table! {
    leases (resource) {
        resource -> Text,
        owner -> Text,
        epoch -> BigInt,
        acquired_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    outbox_streams (tenant_id, stream) {
        tenant_id -> Text,
        stream -> Text,
        next_seq -> BigInt,
    }
}

diesel::table! {
    outbox_entries (tenant_id, stream, seq) {
        tenant_id -> Text,
        stream -> Text,
        seq -> BigInt,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    outbox_consumers (tenant_id, consumer, stream) {
        tenant_id -> Text,
        consumer -> Text,
        stream -> Text,
        position -> BigInt,
        paused -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(outbox_streams, outbox_entries, outbox_consumers);

diesel::table! {
    maintenance_done (name) {
        name -> Text,
        done_at -> Timestamp,
    }
}

diesel::table! {
    profiles (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        fields -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    segment_numbers (tenant_id) {
        tenant_id -> Text,
        last_number -> BigInt,
    }
}

diesel::table! {
    segments (id) {
        id -> Text,
        tenant_id -> Text,
        number -> BigInt,
        name -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    segment_members (segment_id, profile_id) {
        tenant_id -> Text,
        segment_id -> Text,
        profile_id -> Text,
        added_at -> Timestamp,
    }
}

diesel::table! {
    segment_syncs (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        description -> Text,
        active -> Bool,
        connector_id -> Text,
        all_segments -> Bool,
        add_template -> Text,
        remove_template -> Text,
        clear_template -> Nullable<Text>,
        upsert_segment_template -> Nullable<Text>,
        delete_segment_template -> Nullable<Text>,
        batch_size -> BigInt,
        batch_timeout_ms -> BigInt,
        resync_requested_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    segment_sync_segments (sync_id, segment_id) {
        sync_id -> Text,
        segment_id -> Text,
    }
}

diesel::table! {
    segment_sync_batches (id) {
        id -> Text,
        tenant_id -> Text,
        sync_id -> Text,
        segment_id -> Nullable<Text>,
        event -> Text,
        entries -> BigInt,
        rows_affected -> BigInt,
        duration_ms -> BigInt,
        outcome -> Text,
        error -> Nullable<Text>,
        failed_sql -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    profiles,
    segments,
    segment_members,
    segment_syncs,
    segment_sync_segments,
);
