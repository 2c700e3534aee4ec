set terminal pngcairo size 1000,650 noenhanced font ",11"
set output "docs/img/piad_wpac.png"
set title "WPAC-converted embedded Fashion-MNIST ViT: sub-networks cut at n/12 of the MACs, no fine-tuning after extraction"
set xlabel "MACs (paper convention, millions)"
set ylabel "top-1 on the 10k Fashion-MNIST test set (%)"
set key bottom right
set grid
plot "docs/img/piad_wpac.dat" index 0 using 1:2 with linespoints lw 2 dt 1 pt 5 title "WPAC + PIAD, 4 epochs", "docs/img/piad_wpac.dat" index 1 using 1:2 with linespoints lw 2 dt 2 pt 7 title "WPAC + plain fine-tune, 4 epochs", "docs/img/piad_wpac.dat" index 2 using 1:2 with linespoints lw 2 dt 3 pt 9 title "WPAC only (no training)"
