//! The [`Store`] suite, run on both backends: every test that the trait alone
//! can express, written once as a function of a store and run as
//! `tests::sqlite::<name>` (an in-memory [`SqliteStore`]) and
//! `tests::postgres::<name>` (a [`PgStore`] on a fresh database of the test
//! process's PostgreSQL, [`hearth_testpg::TestPostgres::shared`]).
//!
//! A test that needs several handles on one database (what another process, the
//! CLI or another node would hold) takes an [`Open`] instead: each call opens a
//! new handle, on one file in a temporary directory for SQLite, one URL for
//! PostgreSQL.
//!
//! Households, users and sessions are in `accounts`, cameras (sources, agents,
//! drafts, viewer keys) in `cameras`, sharing, transfer/reset and kill switches
//! in `access`, the audit log in `audit`, the change counter in `generation`,
//! OAuth links in `links`. What only one backend has is tested next to it:
//! `sqlite/tests.rs` (migrations, one file shared between processes, the write
//! lock, query plans, the schema's own guarantees against raw SQL) and
//! `postgres/tests.rs`.

use crate::*;

pub(crate) mod access;
mod accounts;
pub(crate) mod audit;
mod cameras;
mod generation;
mod links;

pub(crate) const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

pub(crate) fn key(n: u8) -> TokenHash {
    TokenHash::from_bytes([n; 32])
}

/// A session of `user` under token hash `token`, whose grants carry the holder
/// `[n; 16]` for `key(n)`.
pub(crate) fn session(
    user: UserId,
    token: TokenHash,
    now: UnixMillis,
    expires_at: UnixMillis,
) -> NewSession {
    NewSession {
        user,
        token_hash: token,
        holder: [token.as_bytes()[0]; 16],
        created_at: now,
        expires_at,
        address: None,
        client: None,
    }
}

/// A household with one user, for tests that need an owner.
pub(crate) fn household_with_user(s: &dyn Store, email: &str) -> (Household, User) {
    let h = s.create_household(&format!("home of {email}")).unwrap();
    let u = s.create_user(email, PHC, h.id).unwrap();
    (h, u)
}

/// Opens a new handle on the test's database at each call.
pub(crate) type Open<'a> = &'a (dyn Fn() -> Box<dyn Store> + Sync);

/// Runs each test on both backends: `store` tests get a fresh store, `handles`
/// tests an [`Open`] on a fresh database.
macro_rules! on_both_backends {
    (
        store: [$($module:ident::$test:ident),* $(,)?],
        handles: [$($h_module:ident::$h_test:ident),* $(,)?] $(,)?
    ) => {
        mod sqlite {
            use crate::{DB_FILE_NAME, SqliteStore, Store};

            fn store() -> Box<dyn Store> {
                Box::new(SqliteStore::open_in_memory().unwrap())
            }

            /// Handles on one file in a temporary directory.
            fn with_handles(test: fn(super::Open<'_>)) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join(DB_FILE_NAME);
                test(&|| Box::new(SqliteStore::open(&path).unwrap()) as Box<dyn Store>);
            }

            $(
                #[test]
                fn $test() {
                    super::$module::$test(&*store());
                }
            )*
            $(
                #[test]
                fn $h_test() {
                    with_handles(super::$h_module::$h_test);
                }
            )*
        }

        mod postgres {
            use crate::{PgStore, Store};
            use hearth_testpg::TestPostgres;

            fn store() -> Box<dyn Store> {
                Box::new(PgStore::connect(&TestPostgres::shared().fresh_database()).unwrap())
            }

            /// Handles (each a pool of its own) on one fresh database.
            fn with_handles(test: fn(super::Open<'_>)) {
                let url = TestPostgres::shared().fresh_database();
                test(&|| Box::new(PgStore::connect(&url).unwrap()) as Box<dyn Store>);
            }

            $(
                #[test]
                fn $test() {
                    super::$module::$test(&*store());
                }
            )*
            $(
                #[test]
                fn $h_test() {
                    with_handles(super::$h_module::$h_test);
                }
            )*
        }
    };
}

on_both_backends! {
    store: [
        accounts::households_are_created_found_and_listed,
        accounts::household_needs_a_name,
        accounts::user_email_is_normalized_and_found_case_insensitively,
        accounts::unknown_users_are_none,
        accounts::duplicate_email_is_a_conflict_not_an_internal_error,
        accounts::user_needs_an_existing_household,
        accounts::user_input_is_checked,
        accounts::user_debug_redacts_the_password_hash,
        accounts::users_are_listed_by_email,
        accounts::password_hash_can_be_replaced,
        accounts::session_is_valid_until_it_expires,
        accounts::deleted_session_is_gone_and_deleting_is_idempotent,
        accounts::signing_out_ends_the_session_and_records_its_holder_until_its_grants_expire,
        accounts::session_creation_is_checked,
        accounts::purge_removes_only_expired_sessions,
        accounts::deleting_a_users_sessions_leaves_others,
        accounts::sessions_are_listed_newest_first_under_ids_unrelated_to_their_tokens,
        accounts::a_session_is_ended_by_id_only_by_its_user_and_its_streams_end_with_it,
        accounts::changing_the_password_ends_every_other_session_in_one_go,
        cameras::camera_is_created_at_epoch_one_and_found,
        cameras::a_pulled_cameras_sealed_source_is_set_replaced_and_removed,
        cameras::an_agent_is_made_once_from_a_live_claim_and_its_removal_locks_its_cameras_out,
        cameras::a_draft_camera_is_marked_saved_and_goes_with_its_camera,
        cameras::a_deleted_camera_takes_its_shares_invitations_and_source_but_not_its_audit,
        cameras::viewer_keys_are_created_listed_and_revoked_by_their_owner_only,
        cameras::unknown_cameras_are_none,
        cameras::duplicate_stream_key_is_a_conflict,
        cameras::camera_input_is_checked,
        cameras::users_see_only_their_households_cameras,
        cameras::stream_key_can_be_replaced,
        cameras::epoch_bumps_are_stored,
        access::a_share_makes_the_camera_visible_view_only_until_revoked,
        access::sharing_again_is_a_no_op_that_keeps_the_first_time,
        access::share_refuses_unknown_ids_and_the_cameras_own_household,
        access::shares_are_listed_by_email_per_camera,
        access::snapshot_has_every_allowed_pair_once_with_the_current_epoch,
        access::transfer_moves_the_camera_bumps_its_epoch_and_drops_its_shares,
        access::transfer_refuses_unknown_ids_and_a_no_op_move,
        access::reset_replaces_the_key_bumps_the_epoch_and_drops_shares,
        access::reset_refuses_unknown_cameras_and_taken_keys_and_then_changes_nothing,
        access::suspensions_round_trip,
        access::suspension_input_is_checked,
        access::suspended_cameras_households_and_users_lose_access_until_resumed,
        access::an_invitation_becomes_a_share_only_when_its_recipient_accepts,
        access::access_snapshot_cost,
        audit::events_round_trip_in_order,
        audit::camera_history_is_newest_first_bounded_and_per_camera,
        audit::a_bad_event_refuses_the_whole_batch,
        links::clients_are_registered_replaced_and_found_by_id,
        links::a_code_is_redeemed_once_and_a_replay_revokes_its_link,
        links::refresh_tokens_rotate_and_a_replayed_one_revokes_the_link,
        links::revoking_a_refresh_token_revokes_the_link_an_access_token_only_itself,
        links::relinking_replaces_the_link_and_consents_follow_transfer,
        links::consent_waiting_in_a_code_does_not_survive_unshare_transfer_or_reset,
        links::a_successor_dropped_by_a_retry_revokes_the_link_if_it_turns_up,
        links::expired_access_tokens_are_told_apart_from_unknown_ones_for_a_week,
    ],
    handles: [
        accounts::store_is_usable_as_a_shared_trait_object,
        accounts::two_handles_on_one_file_see_each_others_writes_at_once,
        accounts::concurrent_writers_on_separate_handles_all_succeed,
        audit::audit_batch_cost,
        generation::generation_moves_with_every_access_change_seen_from_another_handle,
        generation::generation_stays_put_for_writes_that_change_no_access,
    ],
}
