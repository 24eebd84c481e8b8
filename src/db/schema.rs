// The tables as migrations/ creates them (written to match; see up.sql).
// Times are `Moment` (UTC, no zone): `Timestamp` everywhere but MySQL,
// where they are DATETIME (see moment.rs).

diesel::table! {
    users (id) {
        id -> BigInt,
        name -> Text,
        disabled -> Bool,
        created_at -> crate::db::moment::Moment,
        expires_at -> Nullable<crate::db::moment::Moment>,
        last_used_at -> Nullable<crate::db::moment::Moment>,
        token_limit -> Nullable<BigInt>,
        request_limit -> Nullable<BigInt>,
        limit_period -> Text,
        models -> Nullable<Text>,
        rpm -> Nullable<BigInt>,
        note -> Nullable<Text>,
        max_parallel -> Nullable<BigInt>,
        budget_nano_usd -> Nullable<BigInt>,
        /// The `revisions` value of the row's last change (triggers set it).
        revision -> BigInt,
        team_id -> Nullable<BigInt>,
        /// Bumped by every change to the user's keys or team, so that the
        /// revision triggers fire and running servers reload the user.
        touched -> BigInt,
    }
}

diesel::table! {
    teams (id) {
        id -> BigInt,
        name -> Text,
        created_at -> crate::db::moment::Moment,
        token_limit -> Nullable<BigInt>,
        request_limit -> Nullable<BigInt>,
        budget_nano_usd -> Nullable<BigInt>,
        limit_period -> Text,
        models -> Nullable<Text>,
        rpm -> Nullable<BigInt>,
        max_parallel -> Nullable<BigInt>,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    keys (id) {
        id -> BigInt,
        user_id -> BigInt,
        label -> Text,
        key_hash -> Text,
        key_hint -> Text,
        created_at -> crate::db::moment::Moment,
        expires_at -> Nullable<crate::db::moment::Moment>,
        last_used_at -> Nullable<crate::db::moment::Moment>,
        models -> Nullable<Text>,
    }
}

diesel::table! {
    users_deleted (id) {
        id -> BigInt,
        revision -> BigInt,
    }
}

diesel::table! {
    usage_records (id) {
        /// The time: milliseconds since 1970 (UTC) × 1000, plus the
        /// record's place among those of its millisecond.
        id -> BigInt,
        user_id -> BigInt,
        /// "METHOD /endpoint"
        endpoint_id -> BigInt,
        model_id -> Nullable<BigInt>,
        upstream_id -> Nullable<BigInt>,
        status -> Integer,
        prompt_tokens -> Nullable<BigInt>,
        completion_tokens -> Nullable<BigInt>,
        cached_tokens -> Nullable<BigInt>,
        cost_nano_usd -> Nullable<BigInt>,
        estimated -> Bool,
        stream -> Bool,
        latency_ms -> BigInt,
        request_hex -> Nullable<Binary>,
        request_id -> Nullable<Text>,
        /// The client family (usage::client), interned.
        client_id -> Nullable<BigInt>,
        /// The label of the key it came through, interned.
        key_id -> Nullable<BigInt>,
        /// The team its user belonged to then, interned.
        team_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    usage_names (id) {
        id -> BigInt,
        name -> Text,
    }
}

diesel::table! {
    revisions (name) {
        name -> Text,
        revision -> BigInt,
    }
}

diesel::table! {
    usage_daily (day, user_name, model, upstream, team) {
        day -> Date,
        user_name -> Text,
        model -> Text,
        upstream -> Text,
        /// '' for none.
        team -> Text,
        requests -> BigInt,
        errors -> BigInt,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        estimated_requests -> BigInt,
        cached_tokens -> BigInt,
        cost_nano_usd -> BigInt,
        priced_requests -> BigInt,
    }
}

diesel::table! {
    objects (id) {
        id -> Text,
        kind -> Text,
        user_name -> Text,
        upstream -> Text,
        created_at -> crate::db::moment::Moment,
        /// What the object brings into a prompt that names it.
        tokens -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Usage records waiting for their real usage (work that finishes
    /// after its reply), with what they hold of their user's limits.
    charges (id) {
        id -> Text,
        user_name -> Text,
        upstream -> Text,
        record -> Text,
        reserved_tokens -> BigInt,
        reserved_nano_usd -> BigInt,
        created_at -> crate::db::moment::Moment,
        next_poll_at -> crate::db::moment::Moment,
        polls -> BigInt,
        /// The team whose limits it holds too ('' for none).
        team_name -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(users, keys, teams, sessions);

diesel::table! {
    /// The audit trail: one row per change (see audit.rs).
    audit (id) {
        id -> BigInt,
        at -> crate::db::moment::Moment,
        actor -> Text,
        action -> Text,
        target -> Text,
        subject -> Text,
        changes -> Text,
    }
}

diesel::table! {
    /// Sign-in sessions (see sessions.rs).
    sessions (id_hash) {
        id_hash -> Text,
        user_name -> Text,
        username -> Text,
        admin -> Bool,
        csrf -> Text,
        expires_at -> crate::db::moment::Moment,
    }
}

diesel::table! {
    /// Sign-ins under way (see sessions.rs).
    sign_ins (state) {
        state -> Text,
        nonce -> Text,
        verifier -> Text,
        redirect_uri -> Text,
        expires_at -> crate::db::moment::Moment,
    }
}

diesel::table! {
    /// The instances sharing the database (see cluster.rs).
    instances (id) {
        id -> Text,
        address -> Text,
        version -> Text,
        started_at -> crate::db::moment::Moment,
        last_seen_at -> crate::db::moment::Moment,
        in_flight -> BigInt,
    }
}

diesel::table! {
    /// The instances' shares of rpm and parallel limits (see leases.rs).
    leases (subject, kind, instance) {
        subject -> Text,
        kind -> Text,
        instance -> Text,
        amount -> BigInt,
        in_use -> BigInt,
        wanted -> BigInt,
        hold_until -> crate::db::moment::Moment,
    }
}
