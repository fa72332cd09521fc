"""SharedPrevaylerVolume: the one home of the app's Prevayler journals, kept when the stack is destroyed."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components import constants
from components.aws_cloud import AwsCloud, policy_document
from components.docker_host import DockerHost

NFS_PORT = 2049
# The access point's root: the app sees it as DATA_PATH, and nothing else of the file system.
ACCESS_POINT_ROOT = "/companynews"


def docker_volume_name(stack: str) -> str:
    """The training data volume's name; scripts/stack deletes it by this name on purge."""
    return f"companynews-{stack}-data"


@dataclass(frozen=True)
class SharedPrevaylerVolumeArgs:
    platform: DockerHost | AwsCloud


class SharedPrevaylerVolume(pulumi.ComponentResource):
    """Docker: a named volume mounted by every app replica; only the lock holder writes to it.
    AWS: an encrypted, protected, backed-up EFS file system, reached only over TLS through one access point."""

    volume_name: pulumi.Output[str]

    def __init__(self, name: str, args: SharedPrevaylerVolumeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:SharedPrevaylerVolume", name, None, opts)
        if isinstance(args.platform, DockerHost):
            self._on_docker(args.platform, args)
            self.register_outputs({"volume_name": self.volume_name})
        else:
            self._on_aws(args.platform)
            self.register_outputs({"file_system_id": self.file_system.id, "access_point_id": self.access_point.id})

    def _on_docker(self, host: DockerHost, args: SharedPrevaylerVolumeArgs) -> None:
        stack = host.args.stack
        volume = docker.Volume(
            "data",
            name=docker_volume_name(stack),
            labels=[docker.VolumeLabelArgs(label=constants.LABEL_STACK, value=stack)],
            # Losing the journals loses every article, so `pulumi destroy` always leaves the volume. Not a
            # setting: the engine reads retain_on_delete from the state of the last `up` on destroy (the
            # program does not run), so a config change before `make down` would not count. Deleting the
            # data is `make purge` (scripts/stack), or `make down` with purgeDataOnDestroy read at that moment.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        self.volume_name = volume.name

    def _on_aws(self, cloud: AwsCloud) -> None:
        self._cloud = cloud
        child = cloud.options(self)
        # Tasks carrying `client_security_group` may reach the mount targets; nothing else may.
        self.client_security_group = cloud.security_group(
            "data-clients", "Tasks that may mount the Prevayler data (NFS out to its mount targets)", self)
        mount_target_group = cloud.security_group(
            "data-mount-targets", "EFS mount targets of the Prevayler data: NFS in from its clients only", self)
        cloud.allow("data-nfs", source=self.client_security_group, target=mount_target_group, port=NFS_PORT,
                    description="NFS (TLS inside) from the data clients", parent=self)

        self.file_system = aws.efs.FileSystem(
            "data",
            encrypted=True,
            performance_mode="generalPurpose",
            # Pay per use: the journals are small and written a little at a time; no burst credits to run out of.
            throughput_mode="elastic",
            tags={"Name": f"companynews-{cloud.args.stack}-data"},
            # Losing the journals loses every article: `pulumi destroy` stops here until someone unprotects it.
            opts=cloud.options(self, protect=True),
        )
        aws.efs.BackupPolicy(
            "data-backup", file_system_id=self.file_system.id,
            backup_policy=aws.efs.BackupPolicyBackupPolicyArgs(status="ENABLED"), opts=child)
        self.mount_targets = [
            aws.efs.MountTarget(f"data-{zone}", file_system_id=self.file_system.id, subnet_id=subnet_id,
                                security_groups=[mount_target_group.id], opts=child)
            for zone, subnet_id in zip(cloud.zones, cloud.private_subnet_ids)
        ]
        # Whatever uid the client claims, files are written as the app's uid/gid, under a root made for it.
        self.access_point = aws.efs.AccessPoint(
            "data",
            file_system_id=self.file_system.id,
            posix_user=aws.efs.AccessPointPosixUserArgs(uid=constants.APP_UID, gid=constants.APP_GID),
            root_directory=aws.efs.AccessPointRootDirectoryArgs(
                path=ACCESS_POINT_ROOT,
                creation_info=aws.efs.AccessPointRootDirectoryCreationInfoArgs(
                    owner_uid=constants.APP_UID, owner_gid=constants.APP_GID, permissions="0750"),
            ),
            tags={"Name": f"companynews-{cloud.args.stack}-data"},
            opts=child,
        )

    def client_statement(self) -> dict:
        """The identity-policy statement that lets a task role mount and write the data, via the access point."""
        return {
            "Effect": "Allow",
            "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
            "Resource": self.file_system.arn,
            "Condition": {"StringEquals": {"elasticfilesystem:AccessPointArn": self.access_point.arn}},
        }

    def admit_writer(self, task_role: aws.iam.Role) -> aws.efs.FileSystemPolicy:
        """The file system's own policy: TLS or nothing, and only `task_role`, only through the access point.

        Called once, by the app tier, whose task role does not exist when the volume is declared.
        """
        if getattr(self, "policy", None) is not None:
            raise RuntimeError(f"{self._name}: the file system already admits a writer; there is only one")
        self.policy = aws.efs.FileSystemPolicy(
            "data",
            file_system_id=self.file_system.id,
            policy=policy_document(
                {
                    "Sid": "DenyWithoutTls",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "*",
                    "Resource": self.file_system.arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "WriterThroughAccessPoint",
                    "Effect": "Allow",
                    "Principal": {"AWS": task_role.arn},
                    "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                    "Resource": self.file_system.arn,
                    "Condition": {"StringEquals": {"elasticfilesystem:AccessPointArn": self.access_point.arn}},
                },
            ),
            opts=self._cloud.options(self),
        )
        return self.policy
