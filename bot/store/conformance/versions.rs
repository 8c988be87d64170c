//! The check of [`Versions`].

use super::*;

pub(super) fn version(kind: &str, text: &str) -> ConfigVersion {
    use sha2::{Digest, Sha256};
    ConfigVersion {
        id: 0,
        kind: kind.into(),
        text: text.into(),
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        author: "file".into(),
        time: Utc::now(),
        summary: "+1 -0".into(),
    }
}

/// Versions are numbered per kind in the order added, a version whose text is the newest's
/// already is not added again, eight nodes adding at once get eight distinct ids, and each
/// reads back whole.
pub(super) async fn versions_are_numbered_kept_whole_and_not_repeated(store: &dyn Store) {
    let first = store
        .add_version(version("rules", "a = 1\n"))
        .await
        .unwrap();
    assert_eq!(first.id, 1);
    let again = store
        .add_version(version("rules", "a = 1\n"))
        .await
        .unwrap();
    assert_eq!(again.id, 1, "the same text is the same version");
    let second = store
        .add_version(version("rules", "a = 2\n"))
        .await
        .unwrap();
    assert_eq!(second.id, 2);
    let other = store.add_version(version("intents", "x\n")).await.unwrap();
    assert_eq!(other.id, 1, "each kind counts on its own");
    let ids: Vec<u64> = futures::future::join_all((0..8).map(|i| {
        let v = version("rules", &format!("a = {}\n", 10 + i));
        async move { store.add_version(v).await.unwrap().id }
    }))
    .await;
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 8, "distinct ids for concurrent adds: {ids:?}");
    let newest = store.versions("rules", 3).await.unwrap();
    assert_eq!(newest.len(), 3);
    assert_eq!(newest[0].id, 10);
    assert!(newest[0].id > newest[1].id && newest[1].id > newest[2].id);
    let back = store.version("rules", 2).await.unwrap().unwrap();
    assert_eq!(back.text, "a = 2\n");
    assert_eq!(back, second);
    assert!(store.version("rules", 99).await.unwrap().is_none());
}
