use super::*;

fn two_services() -> Catalog {
    Catalog::build(&with_fleet(vec![
        service("team-a", "api")
            .global()
            .port("http", 80)
            .port("rpc", 9090)
            .app_protocol("grpc")
            .into(),
        slice("team-a", "api-e1", "api", "east-1")
            .endpoint("10.1.0.1")
            .endpoint_ready("10.1.0.2", false)
            .port("http", 8080)
            .port("rpc", 9000)
            .into(),
        slice("team-a", "api-w1", "api", "west-1")
            .endpoint("10.2.0.1")
            .port("http", 8080)
            .into(),
        service("team-b", "db").port("tcp-pg", 5432).into(),
        service_export("team-b", "db"),
        rule("team-b", "db", "db")
            .locality_lb(api::LocalityLbSetting {
                failover: vec![failover("us-east", "us-west")],
                ..Default::default()
            })
            .into(),
    ]))
}

#[test]
fn the_table_has_one_line_per_service() {
    assert_eq!(
        two_services().to_table(),
        "\
GLOBAL NAME         NAMESPACE   PORTS               CLUSTERS        ENDPOINTS   LOCALITIES                                     POLICY
api.team-a.global   team-a      80/http,9090/grpc   east-1,west-1   2/3         us-east/us-east-1a,us-west/us-west-2a/rack-7   zone=99,remote=1 (default)
db.team-b.global    team-b      5432/tcp            -               0/0         -                                              istio failover (DestinationRule team-b/db)
"
    );
    assert_eq!(
        Catalog::default().to_table(),
        "GLOBAL NAME   NAMESPACE   PORTS   CLUSTERS   ENDPOINTS   LOCALITIES   POLICY\n"
    );
}

#[test]
fn json_has_the_model_fields_and_the_catalogs_own() {
    let catalog = two_services();
    let json = serde_json::to_value(&catalog).unwrap();
    let db = &json["services"][1];
    assert_eq!(db["host"], "db.team-b.global");
    assert_eq!(
        db["aliases"],
        serde_json::json!(["db.team-b.svc.clusterset.local"])
    );
    assert_eq!(db["exported_by"], serde_json::json!(["serviceExport"]));
    assert_eq!(
        db["policy_source"],
        serde_json::json!({"from": "destinationRule", "namespace": "team-b", "name": "db"})
    );
    assert_eq!(db["locality"]["kind"], "istio");
    assert_eq!(db["outlier_detection"], serde_json::Value::Null);
    assert_eq!(
        json["problems"],
        serde_json::json!([{
            "source": "DestinationRule team-b/db",
            "field": "spec.trafficPolicy.loadBalancer.localityLbSetting",
            "message": "outlier detection policy must be provided for failover; without it there is no failover"
        }])
    );
}

#[test]
fn mesh_shares_the_services() {
    let catalog = two_services();
    let mesh = catalog.mesh();
    assert_eq!(
        mesh.services.keys().collect::<Vec<_>>(),
        ["api.team-a.global", "db.team-b.global"]
    );
    for service in &catalog.services {
        assert!(Arc::ptr_eq(
            &mesh.services[&service.service.host],
            &service.service
        ));
    }
}

#[test]
fn the_same_index_builds_the_same_catalog() {
    assert_eq!(two_services(), two_services());
}
