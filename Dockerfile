# regente in a container, as k3s's image is used for CI and kind-like
# clusters. Nothing is pulled: the image is regente's own files on an empty
# base. Build it from a tree where `make` has run:
#
#   hack/container-rootfs.sh            # assembles bin/container-rootfs
#   docker build -t regente .
#   docker run -d --name regente --privileged --tmpfs /run \
#     -p 6443:6443 -v regente-data:/var/lib/regente regente server
#   docker exec regente kubectl get nodes
#
# --privileged is required: the node mounts, creates network devices and
# firewall rules, and runs containers of its own.
FROM scratch
COPY bin/container-rootfs/ /
ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin
VOLUME /var/lib/regente /var/log
EXPOSE 6443
ENTRYPOINT ["/bin/regente"]
CMD ["server"]
