"""Where moto differs from AWS in what damso's stacks meet, made as AWS has it in the sandbox's
emulator process (installed by damso_ops.emulator; damso's own code never imports this).
Written against moto 5.2.5 (uv.lock); 5.1.22 (the lowest pyproject allows) and 5.2.6 (the newest)
have the same Route53 ids and ElastiCache models.

Route53: a hosted zone's id starts with Z (moto's are any 22 letters and digits), which
damso's config check of environments.<env>.zone_id relies on.

ElastiCache, so that the data stack's Redis (a replication group, the shape production runs:
TLS in transit, encrypted at rest) applies and is destroyed there as on AWS:

- a replication group has member clusters (<id>-001, ...) that DescribeCacheClusters finds:
  moto lists their ids but makes none, and the AWS provider reads the first after creating
  the group ("Cache cluster <id>-001 not found");
- a deleted replication group or cache cluster goes away: moto leaves it "deleting" forever,
  on which the provider waits (40 minutes) before it fails;
- DeleteCacheSubnetGroup: moto does not implement it.

S3: deleting a key whose versions include a delete marker from a bucket whose versioning is
suspended (what destroying the shared stack does to a sandbox's release bucket, where damso
deleted pointers: versioning suspended, then force_destroy_artifacts empties it) answers 500 in moto ('FakeDeleteMarker' object has no attribute 'dispose') and the
provider retries for an hour; a delete marker holds no data to dispose of.

Parameter groups are still missing (CreateCacheParameterGroup hangs the provider): the data
stack makes its noeviction group only outside the sandbox (create_redis_parameter_group).
"""

from __future__ import annotations

import inspect


def _member(backend, models, group, cluster_id: str):
    """A member cache cluster of `group`, as ElastiCache describes one."""
    params = [name for name in inspect.signature(models.CacheCluster.__init__).parameters if name != "self"]
    wanted = dict.fromkeys(params)
    wanted.update(
        account_id=backend.account_id,
        region_name=backend.region_name,
        cache_cluster_id=cluster_id,
        replication_group_id=group.replication_group_id,
        cache_node_type=group.cache_node_type,
        engine=group.engine,
        engine_version=group.engine_version,
        cache_parameter_group_name=group.cache_parameter_group_name,
        cache_subnet_group_name=group.cache_subnet_group_name,
        security_group_ids=group.security_group_ids or [],
        transit_encryption_enabled=group.transit_encryption_enabled,
        port=group.port,
        auto_minor_version_upgrade=group.auto_minor_version_upgrade,
        snapshot_retention_limit=group.snapshot_retention_limit,
    )
    cluster = models.CacheCluster(**{k: v for k, v in wanted.items() if k in params})
    cluster.at_rest_encryption_enabled = group.at_rest_encryption_enabled
    return cluster


def install() -> None:
    _route53_zone_ids()
    _elasticache()
    _s3_delete_markers()


def _s3_delete_markers() -> None:
    from moto.s3 import models

    if not hasattr(models.FakeDeleteMarker, "dispose"):
        models.FakeDeleteMarker.dispose = lambda self, garbage=False: None


def _route53_zone_ids() -> None:
    from moto.route53 import models

    made = models.create_route53_zone_id
    if getattr(made, "_damso", False):
        return

    def zone_id(*args, **kwargs) -> str:
        found = made(*args, **kwargs)
        return found if found.startswith("Z") else "Z" + found[1:]

    zone_id._damso = True
    models.create_route53_zone_id = zone_id  # looked up when a zone is made (ZoneIdentifier.generate)


def _elasticache() -> None:
    from moto.elasticache import models, responses

    from moto.core.responses import EmptyResult

    backend_class = models.ElastiCacheBackend
    if getattr(backend_class, "_damso_filled", False):
        return
    create_group, delete_group = backend_class.create_replication_group, backend_class.delete_replication_group
    delete_cluster = backend_class.delete_cache_cluster

    def create_replication_group(self, *args, **kwargs):
        group = create_group(self, *args, **kwargs)
        for cluster_id in group.member_clusters:
            self.cache_clusters.setdefault(cluster_id, _member(self, models, group, cluster_id))
        return group

    def delete_replication_group(self, replication_group_id, *args, **kwargs):
        members = list(getattr(self.replication_groups.get(replication_group_id), "member_clusters", []))
        group = delete_group(self, replication_group_id, *args, **kwargs)
        self.replication_groups.pop(replication_group_id, None)
        for cluster_id in members:
            self.cache_clusters.pop(cluster_id, None)
        return group

    def delete_cache_cluster(self, cache_cluster_id, *args, **kwargs):
        cluster = delete_cluster(self, cache_cluster_id, *args, **kwargs)
        self.cache_clusters.pop(cache_cluster_id, None)
        return cluster

    def delete_cache_subnet_group(self):  # the response handler: moto dispatches by action name
        # an unknown name counts as deleted already, as the provider takes AWS's not-found answer
        self.elasticache_backend.cache_subnet_groups.pop(self._get_param("CacheSubnetGroupName"), None)
        return EmptyResult()

    backend_class.create_replication_group = create_replication_group
    backend_class.delete_replication_group = delete_replication_group
    backend_class.delete_cache_cluster = delete_cache_cluster
    if not hasattr(responses.ElastiCacheResponse, "delete_cache_subnet_group"):
        responses.ElastiCacheResponse.delete_cache_subnet_group = delete_cache_subnet_group
    backend_class._damso_filled = True
