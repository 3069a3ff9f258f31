"""Independent reader and prankster for the integration tests: boto3 against moto.

It never uses the tool's code, so what it reports is what AWS (moto) really holds.
Usage: aws.py COMMAND [ARGS]; prints JSON. AWS_ENDPOINT_URL etc. come from the environment.
"""
import datetime
import json
import sys
import time

import boto3


def clients():
    return boto3.client("ec2"), boto3.client("elbv2"), boto3.client("acm"), boto3.client("ssm")


def tags(obj):
    return {t["Key"]: t["Value"] for t in obj.get("Tags", [])}


def import_cert(keys, names=()):
    """A certificate for `names` (by default the load balancer's DNS names and example.test),
    issued by a CA of the harness's own, imported into ACM with its chain. ACM never gives a
    private key back: it is kept in KEYS/<certificate id>.key for the ALB data plane; the
    certificate is KEYS/<id>.crt, and the CA that clients trust KEYS/<id>.ca.crt."""
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def issue(subject, key, issuer, issuer_key, ca, names=()):
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                            critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "infra test world CA")])
    ca = issue(ca_name, ca_key, ca_name, ca_key, True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names = names or ("example.test", "*.us-east-1.elb.amazonaws.com", "*.elb.amazonaws.com")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = issue(name, key, ca_name, ca_key, False, names)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    _, _, acm, _ = clients()
    arn = acm.import_certificate(Certificate=pem(cert), PrivateKey=key_pem, CertificateChain=pem(ca))["CertificateArn"]
    cid = arn.rsplit("/", 1)[-1]
    os.makedirs(keys, exist_ok=True)
    path = lambda ext: os.path.join(keys, f"{cid}.{ext}")
    for ext, data in (("key", key_pem), ("crt", pem(cert)), ("ca.crt", pem(ca))):
        with open(path(ext), "wb") as f:
            f.write(data)
    os.chmod(path("key"), 0o600)
    return {"arn": arn, "certificate": path("crt"), "ca": path("ca.crt")}


def dump(stack):
    ec2, elb, _, _ = clients()
    f = [{"Name": "tag:infra:stack", "Values": [stack]}]
    out = {}
    out["vpcs"] = [
        {"id": v["VpcId"], "cidr": v["CidrBlock"], "tags": tags(v),
         "dns_hostnames": ec2.describe_vpc_attribute(VpcId=v["VpcId"], Attribute="enableDnsHostnames")
         ["EnableDnsHostnames"]["Value"]}
        for v in ec2.describe_vpcs(Filters=f)["Vpcs"]]
    out["subnets"] = [
        {"id": s["SubnetId"], "cidr": s["CidrBlock"], "zone": s["AvailabilityZone"], "vpc": s["VpcId"],
         "public_ip": s.get("MapPublicIpOnLaunch", False), "tags": tags(s)}
        for s in ec2.describe_subnets(Filters=f)["Subnets"]]
    out["igws"] = [
        {"id": g["InternetGatewayId"], "vpcs": [a["VpcId"] for a in g.get("Attachments", [])], "tags": tags(g)}
        for g in ec2.describe_internet_gateways(Filters=f)["InternetGateways"]]
    out["route_tables"] = [
        {"id": t["RouteTableId"], "routes": {r.get("DestinationCidrBlock"): r.get("GatewayId") for r in t["Routes"]},
         "subnets": sorted(a["SubnetId"] for a in t.get("Associations", []) if a.get("SubnetId")), "tags": tags(t)}
        for t in ec2.describe_route_tables(Filters=f)["RouteTables"]]
    groups = ec2.describe_security_groups(Filters=f)["SecurityGroups"]
    names = {g["GroupId"]: g["GroupName"] for g in groups}

    def rules(g):
        found = []
        for p in g["IpPermissions"]:
            port = f'{p["IpProtocol"]}/{p.get("FromPort")}-{p.get("ToPort")}'
            found += [f'{port} from {r["CidrIp"]}' for r in p.get("IpRanges", [])]
            found += [f'{port} from {names.get(u["GroupId"], u["GroupId"])}' for u in p.get("UserIdGroupPairs", [])]
        return sorted(found)

    out["security_groups"] = [{"id": g["GroupId"], "name": g["GroupName"], "rules": rules(g), "tags": tags(g)}
                              for g in groups]
    out["key_pairs"] = [{"name": k["KeyName"], "tags": tags(k)}
                        for k in ec2.describe_key_pairs(Filters=f)["KeyPairs"]]
    volumes = {v["VolumeId"]: v for v in ec2.describe_volumes()["Volumes"]}
    instances = []
    for r in ec2.describe_instances(Filters=f)["Reservations"]:
        for i in r["Instances"]:
            vols = [volumes.get(m["Ebs"]["VolumeId"], {}) for m in i.get("BlockDeviceMappings", [])]
            instances.append({
                "id": i["InstanceId"], "state": i["State"]["Name"], "type": i["InstanceType"], "image": i["ImageId"],
                "subnet": i.get("SubnetId"), "zone": i["Placement"]["AvailabilityZone"], "tags": tags(i),
                "key": i.get("KeyName"), "imds_tokens": i.get("MetadataOptions", {}).get("HttpTokens"),
                "volumes": [{"size": v.get("Size"), "encrypted": v.get("Encrypted")} for v in vols],
                "groups": sorted(names.get(g["GroupId"], g["GroupId"]) for g in i.get("SecurityGroups", [])),
                "public_ip": i.get("PublicIpAddress"),
            })
    out["instances"] = instances
    out["load_balancers"] = []
    for lb in elb.describe_load_balancers()["LoadBalancers"]:
        arn = lb["LoadBalancerArn"]
        lb_tags = {t["Key"]: t["Value"] for d in elb.describe_tags(ResourceArns=[arn])["TagDescriptions"] for t in d["Tags"]}
        if lb_tags.get("infra:stack") != stack:
            continue
        listeners = []
        for l in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
            a = l["DefaultActions"][0]
            listeners.append({"port": l["Port"], "protocol": l["Protocol"], "policy": l.get("SslPolicy"),
                              "certificates": [c["CertificateArn"] for c in l.get("Certificates", [])],
                              "action": a["Type"], "redirect": a.get("RedirectConfig"),
                              "target_group": a.get("TargetGroupArn")})
        out["load_balancers"].append({"name": lb["LoadBalancerName"], "arn": arn, "dns": lb["DNSName"],
                                      "subnets": sorted(z["SubnetId"] for z in lb["AvailabilityZones"]),
                                      "groups": sorted(names.get(g, g) for g in lb.get("SecurityGroups", [])),
                                      "listeners": listeners})
    out["target_groups"] = []
    for tg in elb.describe_target_groups()["TargetGroups"]:
        arn = tg["TargetGroupArn"]
        tg_tags = {t["Key"]: t["Value"] for d in elb.describe_tags(ResourceArns=[arn])["TagDescriptions"] for t in d["Tags"]}
        if tg_tags.get("infra:stack") != stack:
            continue
        attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]}
        health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        out["target_groups"].append({
            "name": tg["TargetGroupName"], "arn": arn, "port": tg["Port"], "protocol": tg["Protocol"],
            "health_path": tg.get("HealthCheckPath"), "matcher": tg.get("Matcher", {}).get("HttpCode"),
            "interval": tg.get("HealthCheckIntervalSeconds"), "healthy": tg.get("HealthyThresholdCount"),
            "delay": attrs.get("deregistration_delay.timeout_seconds"),
            "targets": sorted(h["Target"]["Id"] for h in health if h["TargetHealth"]["State"] != "draining")})
    return out


def instance_id(stack, address):
    ec2 = boto3.client("ec2")
    # Matched here, not by filter: moto reads [ ] in filter values as a glob.
    f = [{"Name": "tag:infra:stack", "Values": [stack]}, {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    return [i["InstanceId"] for r in ec2.describe_instances(Filters=f)["Reservations"] for i in r["Instances"]
            if tags(i).get("infra:address") == address][0]


def identity(stack):
    """The nodes' role (trust policy, inline policies, attached policies), its instance profile,
    every instance's profile and metadata options, and the repositories named infra-<stack>-…
    or tagged with the stack: as IAM, EC2 and ECR hold them."""
    iam, ecr = boto3.client("iam"), boto3.client("ecr")
    ec2 = boto3.client("ec2")
    name = f"infra-{stack}-nodes"
    out = {"role": None, "profile": None, "instances": {}, "repositories": {}}
    try:
        role = iam.get_role(RoleName=name)["Role"]
        out["role"] = {
            "arn": role["Arn"], "trust": role["AssumeRolePolicyDocument"], "tags": tags(role),
            "inline": {p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                       for p in iam.list_role_policies(RoleName=name)["PolicyNames"]},
            "attached": sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]),
        }
    except iam.exceptions.NoSuchEntityException:
        pass
    try:
        p = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        out["profile"] = {"arn": p["Arn"], "roles": [r["RoleName"] for r in p["Roles"]], "tags": tags(p)}
    except iam.exceptions.NoSuchEntityException:
        pass
    f = [{"Name": "tag:infra:stack", "Values": [stack]},
         {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    for r in ec2.describe_instances(Filters=f)["Reservations"]:
        for i in r["Instances"]:
            m = i.get("MetadataOptions", {})
            out["instances"][tags(i).get("infra:address", i["InstanceId"])] = {
                "profile": i.get("IamInstanceProfile", {}).get("Arn"),
                "tokens": m.get("HttpTokens"), "hop_limit": m.get("HttpPutResponseHopLimit")}
    for repo in ecr.describe_repositories()["repositories"]:
        arn = repo["repositoryArn"]
        rtags = {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=arn)["tags"]}
        if rtags.get("infra:stack") != stack:
            continue
        try:
            policy = json.loads(ecr.get_lifecycle_policy(repositoryName=repo["repositoryName"])["lifecyclePolicyText"])
        except ecr.exceptions.LifecyclePolicyNotFoundException:
            policy = None
        out["repositories"][repo["repositoryName"]] = {
            "uri": repo["repositoryUri"], "tags": rtags,
            "scan_on_push": repo["imageScanningConfiguration"]["scanOnPush"],
            "mutability": repo["imageTagMutability"], "lifecycle": policy}
    return out


def put_image(repository, tag, manifest=None):
    """An image manifest under `tag` in a repository, as a push leaves it in ECR (the manifest
    pushed to the world's registry, or a placeholder)."""
    manifest = manifest or json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                   "digest": "sha256:" + "0" * 64},
        "layers": []})
    image = boto3.client("ecr").put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
    return {"digest": image["image"]["imageId"]["imageDigest"]}


def call(client, operation, arguments):
    """One call, tried again while what it names is not found yet (AWS is eventually
    consistent, and so is the world's proxy: an object is unknown for a moment after its
    create)."""
    import botocore.exceptions
    deadline = time.monotonic() + 10
    while True:
        try:
            result = getattr(client, operation)(**arguments)
            result.pop("ResponseMetadata", None)
            return result
        except botocore.exceptions.ClientError as e:
            if not e.response["Error"]["Code"].endswith("NotFound") or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    ec2, elb, _, _ = clients()
    if cmd == "import-cert":  # keys-directory [name…]
        result = import_cert(args[0], tuple(args[1:]))
    elif cmd == "call":  # service operation JSON-arguments → the response (as a user's script would call it)
        result = call(boto3.client(args[0]), args[1], json.loads(args[2]))
    elif cmd == "request-cert":  # domain → a certificate ACM still has to validate
        arn = boto3.client("acm").request_certificate(DomainName=args[0], ValidationMethod="DNS")["CertificateArn"]
        result = {"arn": arn}
    elif cmd == "dump":
        result = dump(args[0])
    elif cmd == "identity":  # stack → the nodes' role and profile, instances' profiles, repositories
        result = identity(args[0])
    elif cmd == "create-policy":  # name → a customer managed policy's ARN (reads the account's S3 buckets)
        doc = {"Version": "2012-10-17",
               "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}
        arn = boto3.client("iam").create_policy(PolicyName=args[0], PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
        result = {"arn": arn}
    elif cmd == "log-group":  # name → its retention, tags and every line: {stream, message}
        logs = boto3.client("logs")
        groups = [g for g in logs.describe_log_groups(logGroupNamePrefix=args[0])["logGroups"]
                  if g["logGroupName"] == args[0]]
        if not groups:
            result = None
        else:
            events = [e for page in logs.get_paginator("filter_log_events").paginate(logGroupName=args[0])
                      for e in page["events"]]
            result = {"retention": groups[0].get("retentionInDays"),
                      "tags": logs.list_tags_log_group(logGroupName=args[0])["tags"],
                      "events": [{"stream": e["logStreamName"], "message": e["message"]} for e in events]}
    elif cmd == "put-log-line":  # group stream message: one line written now (the stream made if new)
        logs = boto3.client("logs")
        try:
            logs.create_log_stream(logGroupName=args[0], logStreamName=args[1])
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        logs.put_log_events(logGroupName=args[0], logStreamName=args[1],
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": args[2]}])
        result = {}
    elif cmd == "remove-profile":  # stack address → the instance's profile disassociated
        ec2 = boto3.client("ec2")
        instance = instance_id(args[0], args[1])
        for a in ec2.describe_iam_instance_profile_associations(
                Filters=[{"Name": "instance-id", "Values": [instance]}])["IamInstanceProfileAssociations"]:
            ec2.disassociate_iam_instance_profile(AssociationId=a["AssociationId"])
        result = {"instance": instance}
    elif cmd == "hop-limit":  # stack address N → the instance's metadata answers reach N hops
        boto3.client("ec2").modify_instance_metadata_options(
            InstanceId=instance_id(args[0], args[1]), HttpTokens="required",
            HttpPutResponseHopLimit=int(args[2]))
        result = {}
    elif cmd == "put-image":  # repository tag [manifest] → an image pushed there
        result = put_image(*args)
    elif cmd == "revoke":  # stack group-name protocol port source (a CIDR, or "self": the group)
        stack, name, proto, port, source = args
        f = [{"Name": "tag:infra:stack", "Values": [stack]}, {"Name": "group-name", "Values": [name]}]
        gid = ec2.describe_security_groups(Filters=f)["SecurityGroups"][0]["GroupId"]
        rule = {"IpProtocol": proto, "FromPort": int(port), "ToPort": int(port)}
        if source == "self":
            rule["UserIdGroupPairs"] = [{"GroupId": gid}]
        else:
            rule["IpRanges"] = [{"CidrIp": source}]
        ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[rule])
        result = {"revoked": gid}
    elif cmd == "terminate":  # stack address
        iid = instance_id(*args)
        ec2.terminate_instances(InstanceIds=[iid])
        result = {"terminated": iid}
    elif cmd == "deregister":  # stack address target-group-name
        stack, address, tg = args
        iid = instance_id(stack, address)
        arn = elb.describe_target_groups(Names=[tg])["TargetGroups"][0]["TargetGroupArn"]
        elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": iid}])
        result = {"deregistered": iid}
    elif cmd == "launch-untagged":  # stack pool slots subnet-address: a batch killed before its address tags
        stack, pool, slots, subnet_address = args
        f = [{"Name": "tag:infra:stack", "Values": [stack]}]
        subnet = [s["SubnetId"] for s in ec2.describe_subnets(Filters=f)["Subnets"]
                  if tags(s).get("infra:address") == subnet_address][0]
        n = len(slots.split(","))
        r = ec2.run_instances(ImageId="ami-785db401", MinCount=n, MaxCount=n, InstanceType="t3.small", SubnetId=subnet,
                              TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                  {"Key": "infra:stack", "Value": stack}, {"Key": "infra:pool", "Value": pool},
                                  {"Key": "infra:slots", "Value": slots}]}])
        result = {"launched": [i["InstanceId"] for i in r["Instances"]]}
    elif cmd == "instance-by-address":  # public or private IP → id, private IP, VPC block, user-data
        address = args[0]
        found = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                 if address in (i.get("PublicIpAddress"), i.get("PrivateIpAddress")) and i["State"]["Name"] != "terminated"]
        i = found[0]
        vpc = ec2.describe_vpcs(VpcIds=[i["VpcId"]])["Vpcs"][0]
        data = ec2.describe_instance_attribute(InstanceId=i["InstanceId"], Attribute="userData")
        key = ec2.describe_key_pairs(KeyNames=[i["KeyName"]], IncludePublicKey=True)["KeyPairs"][0]
        image = ec2.describe_images(ImageIds=[i["ImageId"]])["Images"][0]["Name"].lower()
        # The login user the image's own cloud.cfg would create (Amazon Linux, Debian, Ubuntu).
        user = "ec2-user" if image.startswith(("amzn", "al20")) else "admin" if "debian" in image else "ubuntu"
        result = {"id": i["InstanceId"], "private_ip": i["PrivateIpAddress"], "vpc_cidr": vpc["CidrBlock"],
                  "user_data": data.get("UserData", {}).get("Value", ""), "public_key": key["PublicKey"],
                  "default_user": user}
    elif cmd == "reachability":  # address client-ip → may the client SSH to it; every running instance
        import ipaddress
        address, client = args[0], ipaddress.ip_address(args[1])
        instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                     if i["State"]["Name"] == "running"]
        target = [i for i in instances if address in (i.get("PublicIpAddress"), i.get("PrivateIpAddress"))]
        groups = [g["GroupId"] for i in target for g in i.get("SecurityGroups", [])]
        rules = [p for g in (ec2.describe_security_groups(GroupIds=groups)["SecurityGroups"] if groups else [])
                 for p in g["IpPermissions"]]
        open_to_client = any(
            p["IpProtocol"] in ("tcp", "-1") and p.get("FromPort", 0) <= 22 <= p.get("ToPort", 65535)
            and any(client in ipaddress.ip_network(r["CidrIp"]) for r in p.get("IpRanges", []))
            for p in rules)
        result = {"ssh_open": open_to_client,
                  "running": [i.get("PublicIpAddress") or i["PrivateIpAddress"] for i in instances]}
    elif cmd == "target-health":  # target-group-arn → instance id → state, reason, description
        found = elb.describe_target_health(TargetGroupArn=args[0])["TargetHealthDescriptions"]
        result = {h["Target"]["Id"]: {"state": h["TargetHealth"]["State"], "reason": h["TargetHealth"].get("Reason"),
                                      "description": h["TargetHealth"].get("Description")} for h in found}
    elif cmd == "terminated":  # the ids of terminated instances
        result = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                  if i["State"]["Name"] == "terminated"]
    elif cmd == "ssm-put":  # name value → a String parameter, overwritten (an AMI published under a path)
        boto3.client("ssm").put_parameter(Name=args[0], Value=args[1], Type="String", Overwrite=True)
        result = {"name": args[0], "value": args[1]}
    elif cmd == "ssm-get":  # name → value and type
        p = boto3.client("ssm").get_parameter(Name=args[0], WithDecryption=True)["Parameter"]
        result = {"value": p["Value"], "type": p["Type"]}
    elif cmd == "make-bucket":
        boto3.client("s3").create_bucket(Bucket=args[0])
        result = {"bucket": args[0]}
    elif cmd == "s3-get":  # bucket key → {"body": text or null}
        try:
            body = boto3.client("s3").get_object(Bucket=args[0], Key=args[1])["Body"].read().decode()
        except boto3.client("s3").exceptions.NoSuchKey:
            body = None
        result = {"body": body}
    elif cmd == "s3-put":  # bucket key text
        boto3.client("s3").put_object(Bucket=args[0], Key=args[1], Body=args[2].encode())
        result = {"put": args[1]}
    elif cmd == "s3-delete":
        boto3.client("s3").delete_object(Bucket=args[0], Key=args[1])
        result = {"deleted": args[1]}
    elif cmd == "s3-keys":
        result = {"keys": sorted(o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=args[0]).get("Contents", []))}
    elif cmd == "yaml":  # file → the document as JSON
        import yaml
        with open(args[0]) as f:
            result = yaml.safe_load(f)
        # PyYAML reads the bare key `on` as True.
        if True in result:
            result["on"] = result.pop(True)
    else:
        sys.exit(f"unknown command {cmd}")
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
