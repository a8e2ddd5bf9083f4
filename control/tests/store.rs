//! The config store against a real Postgres: revisions, validation,
//! all-or-nothing writes, rollback, deletion, concurrency, audit.

mod common;

use common::{REVIEWS_DR, bookinfo, count, db, reviews_vs};
use loupe_control::{ConfigStore, Outcome, StoreError};
use loupe_model::{Kind, ResourceKey};

fn key(kind: Kind, name: &str) -> ResourceKey {
    ResourceKey {
        kind,
        namespace: "default".into(),
        name: name.into(),
    }
}

const REVISIONS: &str = "SELECT count(*) FROM config_revisions";
const AUDIT: &str = "SELECT count(*) FROM audit_log";

#[tokio::test]
async fn apply_creates_then_configures_and_history_lists_revisions() {
    let db = db().await;
    let store = ConfigStore::new(db.pool.clone());

    let first = store
        .apply("bookinfo.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(
        first
            .iter()
            .all(|a| a.outcome == Outcome::Created && a.revision == 1),
        "{first:?}"
    );

    let second = store
        .apply("reviews.yaml", &reviews_vs(0, 100), "bob")
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].key, key(Kind::VirtualService, "reviews"));
    assert_eq!(
        (second[0].revision, second[0].outcome),
        (2, Outcome::Configured)
    );

    let history = store
        .history(&key(Kind::VirtualService, "reviews"))
        .await
        .unwrap();
    let revs: Vec<(i32, &str)> = history
        .iter()
        .map(|r| (r.revision, r.author.as_str()))
        .collect();
    assert_eq!(revs, [(2, "bob"), (1, "alice")], "newest first");
    assert!(
        history[0].yaml.contains("weight: 100"),
        "{}",
        history[0].yaml
    );
    assert_eq!(history[0].message, "apply reviews.yaml");

    let current = store
        .get(&key(Kind::VirtualService, "reviews"))
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(current.revision, 2);
    assert_eq!(current.object["kind"], "VirtualService");
    assert_eq!(current.object["spec"]["http"][0]["route"][1]["weight"], 100);

    let listed = store.list(None).await.unwrap();
    assert_eq!(listed.len(), 2);
    let only_dr = store.list(Some(Kind::DestinationRule)).await.unwrap();
    assert_eq!(only_dr.len(), 1);
    assert_eq!(only_dr[0].key, key(Kind::DestinationRule, "reviews"));

    assert_eq!(count(&db.pool, AUDIT).await, 3, "one audit line per change");
    let audit = store.audit_log(10).await.unwrap();
    assert_eq!(audit.len(), 3);
    assert_eq!(
        (
            audit[0].actor.as_str(),
            audit[0].action.as_str(),
            audit[0].resource.as_str(),
            audit[0].revision
        ),
        (
            "bob",
            "configured",
            "VirtualService/default/reviews",
            Some(2)
        )
    );
    assert!(
        audit[1..]
            .iter()
            .all(|a| a.actor == "alice" && a.action == "created")
    );
}

#[tokio::test]
async fn unchanged_apply_writes_nothing() {
    let db = db().await;
    let store = ConfigStore::new(db.pool.clone());
    store
        .apply("a.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();
    let version = store.version().await.unwrap();

    let again = store
        .apply("a.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();
    assert!(
        again
            .iter()
            .all(|a| a.outcome == Outcome::Unchanged && a.revision == 1),
        "{again:?}"
    );
    assert_eq!(count(&db.pool, REVISIONS).await, 2);
    assert_eq!(store.version().await.unwrap(), version, "version unchanged");
}

#[tokio::test]
async fn yaml_syntax_error_is_refused_with_diagnostics_and_nothing_written() {
    let db = db().await;
    let store = ConfigStore::new(db.pool.clone());
    let broken = format!("{REVIEWS_DR}---\nkind: VirtualService\nmetadata: {{name: x\n  spec: [\n");
    let err = store
        .apply("broken.yaml", &broken, "alice")
        .await
        .unwrap_err();
    let StoreError::Invalid { diagnostics } = &err else {
        panic!("expected Invalid, got {err:?}");
    };
    assert!(!diagnostics.is_empty());
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(
        count(&db.pool, REVISIONS).await,
        0,
        "the valid DR in the same file is not written either"
    );
    assert_eq!(count(&db.pool, AUDIT).await, 0);
}

#[tokio::test]
async fn schema_error_is_refused_and_last_good_state_kept() {
    let db = db().await;
    let store = ConfigStore::new(db.pool.clone());
    store
        .apply("good.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();

    let bad = reviews_vs(50, 50).replace(
        "weight: 50\n    - destination",
        "weight: fifty\n    - destination",
    );
    assert!(bad.contains("fifty"));
    let err = store.apply("bad.yaml", &bad, "mallory").await.unwrap_err();
    let StoreError::Invalid { diagnostics } = &err else {
        panic!("expected Invalid, got {err:?}");
    };
    assert!(
        diagnostics
            .iter()
            .any(|d| d.resource.contains("reviews") || d.resource.contains("bad.yaml")),
        "diagnostics name the resource or file: {diagnostics:?}"
    );
    let current = store
        .get(&key(Kind::VirtualService, "reviews"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((current.revision, current.author.as_str()), (1, "alice"));
    assert_eq!(count(&db.pool, REVISIONS).await, 2);
}

#[tokio::test]
async fn route_to_undefined_subset_is_refused() {
    let db = db().await;
    let store = ConfigStore::new(db.pool.clone());
    store.apply("dr.yaml", REVIEWS_DR, "alice").await.unwrap();
    let to_v9 = reviews_vs(50, 50).replace("subset: v3", "subset: v9");
    let err = store.apply("vs.yaml", &to_v9, "alice").await.unwrap_err();
    let StoreError::Invalid { diagnostics } = &err else {
        panic!("expected Invalid, got {err:?}");
    };
    assert!(
        diagnostics.iter().any(|d| d.message.contains("v9")),
        "the diagnostic names the missing subset: {diagnostics:?}"
    );
    assert!(
        store
            .get(&key(Kind::VirtualService, "reviews"))
            .await
            .unwrap()
            .is_none()
    );

    // Deleting the DestinationRule a VirtualService routes through is refused too.
    store
        .apply("vs.yaml", &reviews_vs(50, 50), "alice")
        .await
        .unwrap();
    let err = store
        .delete(&key(Kind::DestinationRule, "reviews"), "alice")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert!(
        store
            .get(&key(Kind::DestinationRule, "reviews"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn rollback_writes_a_new_revision_with_old_content() {
    let db = db().await;
    let store = ConfigStore::new(db.pool.clone());
    let vs = key(Kind::VirtualService, "reviews");
    store
        .apply("a.yaml", &bookinfo(90, 10), "alice")
        .await
        .unwrap();
    store
        .apply("b.yaml", &reviews_vs(10, 90), "bob")
        .await
        .unwrap();

    let back = store.rollback(&vs, 1, "carol").await.unwrap();
    assert_eq!((back.revision, back.outcome), (3, Outcome::Configured));
    let current = store.get(&vs).await.unwrap().unwrap();
    assert_eq!(current.object["spec"]["http"][0]["route"][0]["weight"], 90);
    assert_eq!(current.author, "carol");
    let history = store.history(&vs).await.unwrap();
    assert_eq!(history[0].message, "rollback to revision 1");

    let again = store.rollback(&vs, 1, "carol").await.unwrap();
    assert_eq!((again.revision, again.outcome), (3, Outcome::Unchanged));

    let err = store.rollback(&vs, 42, "carol").await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                revision: Some(42),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("no revision 42"), "{err}");
}

#[tokio::test]
async fn delete_then_recreate_continues_revision_numbers() {
    let db = db().await;
    let store = ConfigStore::new(db.pool.clone());
    let vs = key(Kind::VirtualService, "reviews");
    store
        .apply("a.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();
    let deleted = store.delete(&vs, "alice").await.unwrap();
    assert_eq!((deleted.revision, deleted.outcome), (2, Outcome::Deleted));
    assert!(store.get(&vs).await.unwrap().is_none());
    assert_eq!(
        store.list(Some(Kind::VirtualService)).await.unwrap().len(),
        0
    );
    let (_, resources) = store.current_resources().await.unwrap();
    assert_eq!(resources.len(), 1, "only the DestinationRule is current");

    let err = store.delete(&vs, "alice").await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { revision: None, .. }),
        "{err:?}"
    );

    let again = store
        .apply("a.yaml", &reviews_vs(50, 50), "alice")
        .await
        .unwrap();
    assert_eq!((again[0].revision, again[0].outcome), (3, Outcome::Created));
    let history = store.history(&vs).await.unwrap();
    assert_eq!(
        history.iter().map(|r| r.deleted).collect::<Vec<_>>(),
        [false, true, false]
    );

    // Rolling back to the deletion deletes it again.
    let gone = store.rollback(&vs, 2, "alice").await.unwrap();
    assert_eq!((gone.revision, gone.outcome), (4, Outcome::Deleted));
}

#[tokio::test]
async fn put_checks_the_key_and_accepts_json() {
    let db = db().await;
    let store = ConfigStore::new(db.pool.clone());
    store.apply("dr.yaml", REVIEWS_DR, "alice").await.unwrap();
    let vs = key(Kind::VirtualService, "reviews");

    let created = store
        .put(&vs, &reviews_vs(50, 50), "console")
        .await
        .unwrap();
    assert_eq!((created.revision, created.outcome), (1, Outcome::Created));

    // The JSON form of the stored object, edited, is accepted too.
    let mut object = store.get(&vs).await.unwrap().unwrap().object;
    object["spec"]["http"][0]["route"][0]["weight"] = 0.into();
    object["spec"]["http"][0]["route"][1]["weight"] = 100.into();
    let configured = store
        .put(&vs, &object.to_string(), "console")
        .await
        .unwrap();
    assert_eq!(
        (configured.revision, configured.outcome),
        (2, Outcome::Configured)
    );

    let other = key(Kind::VirtualService, "ratings");
    let err = store
        .put(&other, &reviews_vs(50, 50), "console")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err:?}");
    assert!(
        err.to_string().contains("VirtualService/default/ratings"),
        "{err}"
    );
    assert!(store.get(&other).await.unwrap().is_none());
}

#[tokio::test]
async fn concurrent_applies_get_distinct_revisions() {
    let db = db().await;
    let store = ConfigStore::new(db.pool.clone());
    store.apply("dr.yaml", REVIEWS_DR, "alice").await.unwrap();
    let writers: Vec<_> = (0..10u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .apply(
                        &format!("w{i}.yaml"),
                        &reviews_vs(i, 100 - i),
                        &format!("writer{i}"),
                    )
                    .await
            })
        })
        .collect();
    let mut revisions = Vec::new();
    for w in writers {
        let applied = w.await.unwrap().expect("every concurrent apply succeeds");
        revisions.push(applied[0].revision);
    }
    revisions.sort();
    assert_eq!(revisions, (1..=10).collect::<Vec<_>>());
    let history = store
        .history(&key(Kind::VirtualService, "reviews"))
        .await
        .unwrap();
    assert_eq!(history.len(), 10);
}

#[tokio::test]
async fn current_resources_version_grows_with_every_change() {
    let db = db().await;
    let store = ConfigStore::new(db.pool.clone());
    let (v0, none) = store.current_resources().await.unwrap();
    assert_eq!((v0, none.len()), (0, 0));
    store
        .apply("a.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();
    let (v1, resources) = store.current_resources().await.unwrap();
    assert!(v1 > v0);
    assert_eq!(resources.len(), 2);
    store
        .delete(&key(Kind::VirtualService, "reviews"), "alice")
        .await
        .unwrap();
    let (v2, resources) = store.current_resources().await.unwrap();
    assert!(v2 > v1, "a deletion is a change too");
    assert_eq!(resources.len(), 1);
}

#[tokio::test]
async fn dry_run_reports_outcomes_and_writes_nothing() {
    let db = db().await;
    let store = ConfigStore::new(db.pool.clone());
    store
        .apply("a.yaml", &bookinfo(50, 50), "alice")
        .await
        .unwrap();
    let version = store.version().await.unwrap();

    let would = store
        .dry_run(&[("b.yaml", &reviews_vs(0, 100))], "bob")
        .await
        .unwrap();
    assert_eq!(would[0].key, key(Kind::VirtualService, "reviews"));
    assert_eq!(
        (would[0].revision, would[0].outcome),
        (2, Outcome::Configured)
    );
    assert_eq!(store.version().await.unwrap(), version);
    assert_eq!(count(&db.pool, REVISIONS).await, 2);
    assert_eq!(count(&db.pool, AUDIT).await, 2);

    let to_v9 = reviews_vs(50, 50).replace("subset: v3", "subset: v9");
    let err = store
        .dry_run(&[("c.yaml", &to_v9)], "bob")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");

    // The lock was released: a real apply goes through.
    let applied = store
        .apply("b.yaml", &reviews_vs(0, 100), "bob")
        .await
        .unwrap();
    assert_eq!(applied[0].revision, 2);
}
