//! The environment binding.

use super::at;
use crate::store::Store;

pub async fn the_store_keeps_one_environment<S: Store>(store: &S) {
    assert_eq!(store.bound_environment().await.unwrap(), None);
    assert_eq!(store.bind_environment("prod", at(0)).await.unwrap(), "prod");
    assert_eq!(store.bind_environment("prod", at(1)).await.unwrap(), "prod");
    assert_eq!(
        store.bind_environment("staging", at(2)).await.unwrap(),
        "prod"
    );
    assert_eq!(
        store.bound_environment().await.unwrap().as_deref(),
        Some("prod")
    );
    let refused = crate::store::environment::bind(store, "staging", at(3))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.bound, "prod");
    assert!(refused.to_string().contains("\"staging\""));
}
